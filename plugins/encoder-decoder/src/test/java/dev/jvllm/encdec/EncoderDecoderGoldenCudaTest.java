package dev.jvllm.encdec;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.jvllm.EngineConfig;
import dev.jvllm.RequestOutput;
import dev.jvllm.SamplingParams;
import dev.jvllm.config.ModelConfig;
import dev.jvllm.cuda.CudaBackend;
import dev.jvllm.engine.LLMEngine;
import dev.jvllm.engine.TinyLlamas;
import dev.jvllm.models.RuntimeAssumptions;
import dev.jvllm.spi.Backend;
import dev.jvllm.spi.BackendOptions;
import dev.jvllm.spi.Backends;
import dev.jvllm.spi.CausalLM;
import dev.jvllm.spi.ModelContext;
import dev.jvllm.spi.ModelRegistry;
import dev.jvllm.weights.Checkpoint;
import dev.jvllm.weights.DType;
import dev.jvllm.weights.SafetensorsTestWriter;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.TreeMap;
import java.util.function.Supplier;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@link EncoderDecoderGoldenTest} on the GPU: the encoders, the cross-attention and relative-bias kernels and the decoders through the CUDA backend. */
class EncoderDecoderGoldenCudaTest extends EncoderDecoderGoldenTest {

    @BeforeEach
    void requireGpu() {
        RuntimeAssumptions.requireGpu();
    }

    @Override
    String device() {
        return "cuda";
    }

    /**
     * In bfloat16 (the tiny goldens' heads of 8 and 12 take the generic attention kernels; the pass's
     * 48-row products take cuBLAS, and BART's norms add_layer_norm): the logits stay within bf16's
     * rounding of the float32 goldens at every position. t5-gated is left out: its error reaches 6.5%
     * at one position in bf16, as much through either cross-attention kernel.
     */
    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"bart", "mbart", "t5"})
    void bf16LogitsStayNearTransformersFloat32Ones(String name) {
        assertLogitsWithin(name, DType.BF16, 5e-2);
    }

    /**
     * A BART and a T5 of 64-wide heads, whose cross-attention in bfloat16 runs through paged_decode over
     * the kept rows (the golden's weights' shapes scaled by 8, random values: Transformers has no output
     * for them here), against the same model in float32 on the GPU (the generic kernel): each decoder
     * position's logits, three encoder inputs at kept rows 0, 16 and 48, within bf16's rounding. T5, whose
     * scores are not scaled down, rounds most: its worst position was 3.2% off on an H200, 3.25% with
     * every attention on the generic kernels instead (BART's 1.1% either way).
     */
    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"bart", "t5"})
    void bf16CrossAttentionOfWideHeadsMatchesFloat32(String name, @TempDir Path dir) throws IOException {
        Case golden = Case.load(name);
        Path wide = wideHeads(name, golden.directory(), dir);
        assertEachWithin(decoderLogits(wide, golden, DType.F32), decoderLogits(wide, golden, DType.BF16), 5e-2,
                name + ", decoder position");
    }

    /**
     * Each [prompt][position] row of {@code actual} within {@code tolerance} (relative L2 error) of
     * {@code exact}'s; a failure names the worst row.
     */
    private static void assertEachWithin(float[][][] exact, float[][][] actual, double tolerance, String what) {
        double worst = -1;
        String where = "";
        for (int s = 0; s < exact.length; s++) {
            for (int p = 0; p < exact[s].length; p++) {
                double relative = relativeError(actual[s][p], exact[s][p]);
                if (!(relative <= worst)) {  // a NaN row is the worst
                    worst = relative;
                    where = what + " " + p + " of prompt " + s;
                }
            }
        }
        assertTrue(worst >= 0 && worst < tolerance, "worst relative logit error " + worst + " at " + where);  // false for NaN too
    }

    /**
     * The 64-wide-head BART and T5 decoding one token a step (each step's self-attention through
     * paged_decode, T5's with its relative bias through the _relative kernel, and the cross-attention
     * through paged_decode) in bfloat16, against the same steps in float32 (the generic kernels): each
     * step's logits within bf16's rounding, three sequences, 16 steps, teacher-forced by the golden's tokens.
     */
    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"bart", "t5"})
    void bf16DecodeStepsOfWideHeadsMatchFloat32(String name, @TempDir Path dir) throws IOException {
        Case golden = Case.load(name);
        Path wide = wideHeads(name, golden.directory(), dir);
        assertEachWithin(stepwiseLogits(wide, golden, DType.F32), stepwiseLogits(wide, golden, DType.BF16), 5e-2,
                name + ", decode step");
    }

    /** decoderLogits one position a pass: a step of one token per sequence, the earlier ones cached. */
    private float[][][] stepwiseLogits(Path dir, Case golden, DType type) {
        int n = golden.encoderPrompts().size(), length = 16, blockSize = 16;
        ModelConfig config = ModelConfig.load(dir);
        try (Backend backend = Backends.create(device(), new BackendOptions(1, type));
             Checkpoint checkpoint = Checkpoint.open(dir)) {
            CausalLM model = ModelRegistry.find(config).load(new ModelContext(config, checkpoint, backend, 128, dir));
            int start = ((dev.jvllm.spi.EncoderDecoderModel) model).decoderStartTokenId();
            List<dev.jvllm.engine.EncoderInput> encoders = golden.encoderPrompts().stream().map(dev.jvllm.engine.EncoderInput::of)
                    .toList();
            float[][][] logits = new float[n][length][];
            try (dev.jvllm.spi.KvCache cache = backend.allocateKvCache(model.kvCacheSpec(n, blockSize))) {
                for (int p = 0; p < length; p++) {
                    int[] ids = new int[n], positions = new int[n], slots = new int[n], starts = new int[n + 1];
                    int[] contexts = new int[n], rows = new int[n];
                    int[][] tables = new int[n][];
                    for (int s = 0; s < n; s++) {
                        ids[s] = p == 0 ? start : golden.greedy().get(s)[p - 1];
                        positions[s] = p;
                        slots[s] = s * blockSize + p;
                        starts[s + 1] = s + 1;
                        contexts[s] = p + 1;
                        rows[s] = s;
                        tables[s] = new int[]{s};
                    }
                    dev.jvllm.engine.ForwardBatch step = new dev.jvllm.engine.ForwardBatch(ids, positions, slots, starts, contexts,
                            tables, blockSize, rows, null, null, null, encoders);
                    float[] values = backend.toFloatArray(model.forward(step, cache));
                    int vocab = model.vocabSize();
                    for (int s = 0; s < n; s++) logits[s][p] = java.util.Arrays.copyOfRange(values, s * vocab, (s + 1) * vocab);
                }
            }
            return logits;
        }
    }

    /**
     * The 64-wide-head BART and T5 through the engine in bfloat16, three requests of 16 tokens: decode
     * steps captured and replayed as CUDA graphs (paged_decode's cross-attention over tables as long as
     * the longest input; BART's one-row biased products in gemv_rows3 and add_layer_norm; T5's
     * self-attention through paged_decode's _relative kernel) give the greedy tokens of the same steps
     * run eagerly. Both runs pad their decode steps alike (the eager one through a runCaptured that just
     * runs the pass), so only the graphs differ.
     */
    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"bart", "t5"})
    void bf16DecodeGraphsOfWideHeadsGiveTheEagerTokens(String name, @TempDir Path dir) throws IOException {
        Case golden = Case.load(name);
        Path wide = wideHeads(name, golden.directory(), dir);
        Map<String, List<Integer>> eager = greedyThroughEngine(wide, golden, false);
        long[] launches = new long[1];
        Map<String, List<Integer>> captured = greedyThroughEngine(wide, golden, true, launches);
        assertEquals(eager, captured);
        assertTrue(launches[0] >= 10, "decode steps ran as graph launches: " + launches[0]);
    }

    private static Map<String, List<Integer>> greedyThroughEngine(Path dir, Case golden, boolean graphs, long... launches) {
        ModelConfig config = ModelConfig.load(dir);
        try (Checkpoint checkpoint = Checkpoint.open(dir);
             Backend cuda = Backends.create("cuda", new BackendOptions(0, DType.BF16))) {
            Backend backend = graphs ? cuda : TinyLlamas.withOverrides(cuda, Map.of(
                    "runCaptured", args -> ((Supplier<?>) args[1]).get()));
            CausalLM model = ModelRegistry.find(config).load(new ModelContext(config, checkpoint, backend, 128, dir));
            EngineConfig settings = new EngineConfig(128, 16, 64L << 20, 8, 256, false, 0L, "cuda", 0, 0.9, false);
            Map<String, List<Integer>> tokens = new TreeMap<>();
            try (LLMEngine engine = new LLMEngine(model, backend, null, List.of(), 128, settings)) {
                SamplingParams greedy = SamplingParams.builder().temperature(0).ignoreEos(true).maxTokens(16).build();
                for (int r = 0; r < golden.encoderPrompts().size(); r++) {
                    engine.addRequest("r" + r, null, golden.encoderPrompts().get(r), greedy);
                }
                while (engine.hasUnfinishedRequests()) {
                    for (RequestOutput out : engine.step()) {
                        if (out.finished()) tokens.put(out.requestId(), out.outputs().getFirst().tokenIds());
                    }
                }
            }
            if (graphs) launches[0] = ((CudaBackend) cuda).graphLaunches();
            return tokens;
        }
    }

    /**
     * The tiny golden's config and tensor names with d_model 256 (4 heads of 64) and feed-forward widths
     * scaled alike: every dimension of 32, 48 or 64 scaled by 8 (T5's relative bias tables, buckets by
     * heads, kept); random weights, norms' near 1.
     */
    private static Path wideHeads(String name, Path goldenDir, Path dir) throws IOException {
        ObjectMapper json = new ObjectMapper();
        ObjectNode config = (ObjectNode) json.readTree(goldenDir.resolve("config.json").toFile());
        if (name.startsWith("t5")) {
            config.put("d_model", 256).put("d_kv", 64).put("d_ff", 8 * config.get("d_ff").asInt());
        } else {
            config.put("d_model", 256).put("decoder_ffn_dim", 384).put("encoder_ffn_dim", 512);
        }
        json.writeValue(dir.resolve("config.json").toFile(), config);
        Map<Long, Long> scaled = Map.of(32L, 256L, 48L, 384L, 64L, 512L);
        SafetensorsTestWriter writer = new SafetensorsTestWriter();
        SplittableRandom random = new SplittableRandom(11);
        try (Checkpoint checkpoint = Checkpoint.open(goldenDir)) {
            for (String tensor : new java.util.TreeSet<>(checkpoint.names())) {
                long[] shape = checkpoint.get(tensor).shape().clone();
                long count = 1;
                for (int d = 0; d < shape.length; d++) {
                    if (!tensor.contains("relative_attention_bias")) shape[d] = scaled.getOrDefault(shape[d], shape[d]);
                    count *= shape[d];
                }
                boolean normScale = tensor.endsWith("norm.weight") || tensor.endsWith("layernorm_embedding.weight");
                // T5's relative position biases as large as trained ones are beside its unscaled scores, so
                // that a wrong one shows in the logits.
                double spread = tensor.contains("relative_attention_bias") ? 1 : 0.05;
                double[] values = new double[(int) count];
                for (int i = 0; i < values.length; i++) values[i] = (normScale ? 1 : 0) + spread * random.nextGaussian();
                writer.add(tensor, DType.F32, shape, values);
            }
        }
        writer.write(dir.resolve("model.safetensors"));
        return dir;
    }
}
