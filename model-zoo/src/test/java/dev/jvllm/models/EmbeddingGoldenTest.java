package dev.jvllm.models;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.jvllm.EmbeddingOutput;
import dev.jvllm.LLM;
import dev.jvllm.PoolingParams;
import dev.jvllm.Prompt;
import dev.jvllm.Task;
import dev.jvllm.config.ModelConfig;
import dev.jvllm.engine.ForwardBatch;
import dev.jvllm.spi.Backend;
import dev.jvllm.spi.BackendOptions;
import dev.jvllm.spi.Backends;
import dev.jvllm.spi.KvCache;
import dev.jvllm.spi.KvCacheSpec;
import dev.jvllm.spi.ModelContext;
import dev.jvllm.spi.ModelRegistry;
import dev.jvllm.spi.PoolingModel;
import dev.jvllm.weights.Checkpoint;
import dev.jvllm.weights.WeightTensor;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.TestFactory;

import java.io.IOException;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.IntStream;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * BERT, XLM-RoBERTa and Mistral-as-embedder on the CPU against Hugging Face Transformers' float32
 * last hidden states and pooled, normalized vectors (tools/reference/make_embedding_goldens.py).
 */
class EmbeddingGoldenTest {

    static final List<String> CASES = List.of("bert-tiny", "xlm-roberta-tiny", "mistral-embedder-tiny");
    static final String COMMAND = "python3 tools/reference/make_embedding_goldens.py --out model-zoo/src/test/resources/embedding-goldens";

    /** The goldens on the test class path (the module's resources, wherever the tests run from). */
    static Path root() {
        try {
            java.net.URL url = EmbeddingGoldenTest.class.getResource("/embedding-goldens");
            return url != null ? Path.of(url.toURI()) : Path.of("src", "test", "resources", "embedding-goldens");
        } catch (java.net.URISyntaxException e) {
            throw new IllegalStateException(e);
        }
    }

    @TestFactory
    Stream<DynamicTest> hiddenStatesAndPooledVectorsMatchTransformers() {
        List<String> missing = CASES.stream().filter(c -> !Files.isRegularFile(root().resolve(c).resolve("goldens.json"))).toList();
        List<DynamicTest> tests = new ArrayList<>();
        if (!missing.isEmpty()) {
            tests.add(DynamicTest.dynamicTest("goldens present", () -> fail("embedding goldens missing: "
                    + missing.stream().map(c -> root().resolve(c).toString()).toList()
                    + "; generate them on the GPU machine with: " + COMMAND)));
        }
        for (String name : CASES) {
            if (missing.contains(name)) continue;
            tests.add(DynamicTest.dynamicTest(name + " hidden states", () -> hiddenStatesMatch(root().resolve(name), "cpu")));
            tests.add(DynamicTest.dynamicTest(name + " pooled vectors", () -> pooledVectorsMatch(root().resolve(name), "cpu")));
        }
        return tests.stream();
    }

    /** The last hidden states of one forward per input on {@code backendName}, against Transformers'. */
    static void hiddenStatesMatch(Path dir, String backendName) throws IOException {
        JsonNode goldens = new ObjectMapper().readTree(dir.resolve("goldens.json").toFile());
        ModelConfig config = ModelConfig.load(dir);
        try (Checkpoint checkpoint = Checkpoint.open(dir);
             Checkpoint expected = Checkpoint.openFile(dir.resolve("hidden.safetensors"));
             Backend backend = Backends.create(backendName, BackendOptions.defaults());
             PoolingModel model = ModelRegistry.find(config).loadPooling(new ModelContext(config, checkpoint, backend, 128))) {
            KvCacheSpec spec = model.kvCacheSpec(8, 16);
            try (KvCache cache = spec == null ? null : backend.allocateKvCache(spec)) {
                int i = 0;
                for (JsonNode input : goldens.get("inputs")) {
                    int[] ids = Golden.ints(input.get("token_ids"));
                    int n = ids.length;
                    int[] all = IntStream.range(0, n).toArray();
                    ForwardBatch batch = new ForwardBatch(ids, all, all, new int[]{0, n}, new int[]{n},
                            new int[][]{{0, 1, 2, 3}}, 16, new int[]{n - 1});
                    float[] actual = backend.toFloatArray(model.hiddenStates(batch, cache));
                    WeightTensor reference = expected.get("input" + i++);
                    float[] wanted = reference.data().toArray(ValueLayout.JAVA_FLOAT_UNALIGNED);
                    assertEquals(wanted.length, actual.length, dir.getFileName() + " input of " + n + " tokens");
                    assertTrue(relativeError(actual, wanted) < 1e-4, dir.getFileName() + " input of " + n
                            + " tokens: relative error " + relativeError(actual, wanted));
                }
            }
        }
    }

    /** The pooled, normalized vectors of the engine on {@code device}, against Transformers'. */
    static void pooledVectorsMatch(Path dir, String device) throws IOException {
        JsonNode goldens = new ObjectMapper().readTree(dir.resolve("goldens.json").toFile());
        try (LLM llm = LLM.builder().model(dir.toString()).device(device).task(Task.EMBED).maxModelLen(128).threads(2)
                .build()) {
            List<Prompt> prompts = new ArrayList<>();
            goldens.get("inputs").forEach(in -> prompts.add(Prompt.tokens(Golden.ints(in.get("token_ids")))));
            List<EmbeddingOutput> outputs = llm.encode(prompts, PoolingParams.defaults());
            for (int i = 0; i < prompts.size(); i++) {
                float[] wanted = floats(goldens.get("inputs").get(i).get("pooled_normalized"));
                float[] actual = outputs.get(i).embedding();
                assertTrue(relativeError(actual, wanted) < 1e-4, dir.getFileName() + " input " + i
                        + ": relative error " + relativeError(actual, wanted));
            }
        }
    }

    /** As vLLM's pooling runner on a causal LM: the last token's final state times lm_head gives Transformers' last logits. */
    @TestFactory
    Stream<DynamicTest> llamaForCausalLmEmbedsWithTheStateItsHeadReads() {
        return Golden.cases("llama-plain").map(golden -> DynamicTest.dynamicTest(golden.name(), () -> embedsWithTheStateItsHeadReads(golden)));
    }

    /**
     * The other families on the shared pre-norm decoder embed through the same forward: sliding
     * windows (Mistral, Qwen2), q/k biases and norms (Qwen2, Qwen3), Gemma's embedding scale and
     * (1 + w) norms, Phi-3's fused projections, Gemma 2's sandwich norms (its logits soft-capped).
     */
    @TestFactory
    Stream<DynamicTest> preNormFamiliesEmbedWithTheStateTheirHeadReads() {
        return Stream.of("mistral-sliding", "qwen2-sliding", "qwen2-tied", "qwen3-qk-norm", "gemma-plain",
                        "gemma2-softcap", "phi3-fused")
                .flatMap(Golden::cases)
                .map(golden -> DynamicTest.dynamicTest(golden.name(), () -> embedsWithTheStateItsHeadReads(golden)));
    }

    /** Element i of a golden weight: the goldens store float32 or (bfloat16-exact values as) BF16. */
    private static float element(WeightTensor t, long i) {
        return switch (t.dtype()) {
            case F32 -> t.data().getAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED, i);
            case BF16 -> Float.intBitsToFloat(t.data().getAtIndex(ValueLayout.JAVA_SHORT_UNALIGNED, i) << 16);
            default -> throw new IllegalArgumentException(t.name() + " is " + t.dtype());
        };
    }

    private static void embedsWithTheStateItsHeadReads(Golden golden) throws IOException {
        ModelConfig config = ModelConfig.load(golden.directory());
        double softcap = config.raw().path("final_logit_softcapping").asDouble(0);
        try (LLM llm = LLM.builder().model(golden.directory().toString()).task(Task.EMBED).maxModelLen(128).build();
             Checkpoint weights = Checkpoint.open(golden.directory())) {
            WeightTensor head = weights.names().contains("lm_head.weight") && !config.tieWordEmbeddings()
                    ? weights.get("lm_head.weight") : weights.get("model.embed_tokens.weight");
            int vocab = (int) head.dim(0), hidden = (int) head.dim(1);
            for (Golden.Prompt prompt : golden.prompts()) {
                float[] state = llm.embed(prompt.tokenIds(), PoolingParams.builder().normalize(false).build()).embedding();
                float[] logits = new float[vocab];
                for (int v = 0; v < vocab; v++) {
                    double dot = 0;
                    for (int h = 0; h < hidden; h++) {
                        dot += state[h] * element(head, (long) v * hidden + h);
                    }
                    logits[v] = (float) (softcap > 0 ? softcap * Math.tanh(dot / softcap) : dot);
                }
                float[] wanted = prompt.logits()[prompt.tokenIds().length - 1];
                assertTrue(relativeError(logits, wanted) < 1e-4, golden.name() + ": relative error " + relativeError(logits, wanted));
            }
        }
    }

    private static double relativeError(float[] actual, float[] expected) {
        double err = 0, norm = 0;
        for (int i = 0; i < expected.length; i++) {
            err += Math.pow(actual[i] - expected[i], 2);
            norm += (double) expected[i] * expected[i];
        }
        return Math.sqrt(err / norm);
    }


    private static float[] floats(JsonNode array) {
        float[] out = new float[array.size()];
        for (int i = 0; i < out.length; i++) out[i] = (float) array.get(i).asDouble();
        return out;
    }
}
