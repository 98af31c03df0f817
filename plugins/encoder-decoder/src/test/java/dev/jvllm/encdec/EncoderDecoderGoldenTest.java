package dev.jvllm.encdec;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.jvllm.InvalidRequestException;
import dev.jvllm.LLM;
import dev.jvllm.Prompt;
import dev.jvllm.RequestOutput;
import dev.jvllm.SamplingParams;
import dev.jvllm.config.ModelConfig;
import dev.jvllm.engine.EncoderInput;
import dev.jvllm.engine.ForwardBatch;
import dev.jvllm.models.Golden;
import dev.jvllm.spi.Backend;
import dev.jvllm.spi.BackendOptions;
import dev.jvllm.spi.Backends;
import dev.jvllm.spi.CausalLM;
import dev.jvllm.spi.EncoderDecoderModel;
import dev.jvllm.spi.KvCache;
import dev.jvllm.spi.ModelContext;
import dev.jvllm.spi.ModelRegistry;
import dev.jvllm.weights.Checkpoint;
import dev.jvllm.weights.DType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.URISyntaxException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.IntStream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * BART and T5, found on the class path as a plugin, against Hugging Face Transformers' float32 outputs
 * (tools/reference/make_encoder_decoder_goldens.py): encoder prompts of 9, 17 and 60 tokens, the
 * decoder's logits at every position of its greedy continuation, and 16 greedy tokens through the engine.
 */
class EncoderDecoderGoldenTest {

    String device() {
        return "cpu";
    }

    /** A case: its directory, and per prompt the encoder's tokens, the greedy tokens and the logits along them. */
    record Case(Path directory, int decoderStart, List<int[]> encoderPrompts, List<int[]> greedy, List<float[][]> logits) {

        static Case load(String name) {
            try {
                Path dir = Path.of(EncoderDecoderGoldenTest.class.getResource("/encoder-decoder-goldens/" + name).toURI());
                JsonNode json = new ObjectMapper().readTree(dir.resolve("goldens.json").toFile());
                List<int[]> encoder = new ArrayList<>(), greedy = new ArrayList<>();
                int start = json.get("prompts").get(0).get("decoder_start").asInt();
                List<float[][]> logits = new ArrayList<>();
                try (Checkpoint file = Checkpoint.openFile(dir.resolve("logits.safetensors"))) {
                    int i = 0;
                    for (JsonNode p : json.get("prompts")) {
                        encoder.add(Golden.ints(p.get("encoder_token_ids")));
                        greedy.add(Golden.ints(p.get("greedy_token_ids")));
                        logits.add(Golden.matrix(file.get("prompt" + i++)));
                    }
                }
                return new Case(dir, start, encoder, greedy, logits);
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            } catch (URISyntaxException e) {
                throw new IllegalStateException(e);
            }
        }
    }

    /**
     * One pass of the decoder over [decoder start] + the golden's greedy tokens but the last, for all
     * prompts in one batch (each sequence with its own encoder input): relative logit error below 1e-4
     * at every position.
     */
    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"bart", "bart-scaled", "mbart", "marian", "t5", "t5-gated"})
    void logitsMatchTransformersAtEveryDecoderPosition(String name) {
        assertLogitsWithin(name, null, 1e-4);
    }

    /**
     * The batched decoder pass of {@link #logitsMatchTransformersAtEveryDecoderPosition} computing in
     * {@code activationType} (null: the checkpoint's), each position's logits within {@code tolerance}
     * (relative L2 error) of the float32 goldens.
     */
    void assertLogitsWithin(String name, DType activationType, double tolerance) {
        Case golden = Case.load(name);
        float[][][] logits = decoderLogits(golden.directory(), golden, activationType);
        for (int s = 0; s < logits.length; s++) {
            for (int p = 0; p < logits[s].length; p++) {
                double relative = relativeError(logits[s][p], golden.logits().get(s)[p]);
                assertTrue(relative < tolerance, name + " prompt " + s + ", decoder position " + p + ": relative logit error " + relative);
            }
        }
    }

    /** The relative L2 error of {@code actual} against {@code expected}. */
    static double relativeError(float[] actual, float[] expected) {
        double err = 0, norm = 0;
        for (int v = 0; v < expected.length; v++) {
            err += Math.pow(actual[v] - expected[v], 2);
            norm += (double) expected[v] * expected[v];
        }
        return Math.sqrt(err / norm);
    }

    /**
     * The logits ([prompt][decoder position][vocab]) of one batched pass of the model in {@code dir}
     * (computing in {@code activationType}; null: the checkpoint's) over each of the case's encoder
     * prompts with [decoder start] + its greedy tokens but the last as the decoder's input.
     */
    float[][][] decoderLogits(Path dir, Case golden, DType activationType) {
        int n = golden.encoderPrompts().size(), length = 16, blockSize = 16;
        ModelConfig config = ModelConfig.load(dir);
        try (Backend backend = Backends.create(device(), new BackendOptions(1, activationType));
             Checkpoint checkpoint = Checkpoint.open(dir)) {
            CausalLM model = ModelRegistry.find(config).load(new ModelContext(config, checkpoint, backend, 128, dir));
            int start = ((EncoderDecoderModel) model).decoderStartTokenId();
            int[] ids = new int[n * length], positions = new int[n * length], slots = new int[n * length], rows = new int[n * length];
            int[] starts = new int[n + 1], contexts = new int[n];
            int[][] tables = new int[n][];
            List<EncoderInput> encoders = new ArrayList<>();
            for (int s = 0; s < n; s++) {
                starts[s] = s * length;
                contexts[s] = length;
                tables[s] = new int[]{s};
                encoders.add(EncoderInput.of(golden.encoderPrompts().get(s)));
                for (int p = 0; p < length; p++) {
                    int t = s * length + p;
                    ids[t] = p == 0 ? start : golden.greedy().get(s)[p - 1];
                    positions[t] = p;
                    slots[t] = s * blockSize + p;
                    rows[t] = t;
                }
            }
            starts[n] = n * length;
            ForwardBatch batch = new ForwardBatch(ids, positions, slots, starts, contexts, tables, blockSize, rows, null, null, null,
                    encoders);
            float[] logits;
            try (KvCache cache = backend.allocateKvCache(model.kvCacheSpec(n, blockSize))) {
                logits = backend.toFloatArray(model.forward(batch, cache));
            }
            int vocab = model.vocabSize();
            float[][][] byPosition = new float[n][length][];
            for (int s = 0; s < n; s++) {
                for (int p = 0; p < length; p++) {
                    byPosition[s][p] = java.util.Arrays.copyOfRange(logits, (s * length + p) * vocab, (s * length + p + 1) * vocab);
                }
            }
            return byPosition;
        }
    }

    private LLM llm(Path directory) {
        return LLM.builder().model(directory.toString()).device(device()).build();
    }

    private static final SamplingParams GREEDY = SamplingParams.builder().temperature(0).ignoreEos(true).maxTokens(16).build();

    /** The engine: the prompts batched, each encoded once, decoded step by step from decoder_start_token_id. */
    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"bart", "bart-scaled", "mbart", "marian", "t5", "t5-gated"})
    void greedyTokensEqualTransformers(String name) {
        Case golden = Case.load(name);
        try (LLM llm = llm(golden.directory())) {
            List<Prompt> prompts = golden.encoderPrompts().stream().map(Prompt::tokens).toList();
            List<RequestOutput> outputs = llm.generatePrompts(prompts, GREEDY);
            for (int i = 0; i < prompts.size(); i++) {
                assertArrayEquals(golden.greedy().get(i), outputs.get(i).outputs().getFirst().tokenIdArray(), "prompt " + i);
                assertEquals(List.of(golden.decoderStart()), outputs.get(i).promptTokenIds(), "the decoder's prompt: decoder_start_token_id");
            }
        }
    }

    /**
     * A decoder prompt of the golden's first 8 greedy tokens (with or without the start token in
     * front) continues with the golden's other 8.
     */
    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"bart", "t5-gated"})
    void aDecoderPromptOfTheGreedyTokensContinuesWithTheRest(String name) {
        Case golden = Case.load(name);
        try (LLM llm = llm(golden.directory())) {
            for (int i = 0; i < golden.encoderPrompts().size(); i++) {
                int[] greedy = golden.greedy().get(i);
                int[] first = java.util.Arrays.copyOfRange(greedy, 0, 8), rest = java.util.Arrays.copyOfRange(greedy, 8, 16);
                int[] withStart = new int[9];
                withStart[0] = golden.decoderStart();
                System.arraycopy(first, 0, withStart, 1, 8);
                SamplingParams eight = GREEDY.toBuilder().maxTokens(8).build();
                for (int[] decoder : new int[][]{first, withStart}) {
                    RequestOutput out = llm.generatePrompts(List.of(Prompt.encoderDecoder(Prompt.tokens(golden.encoderPrompts().get(i)),
                            decoder)), eight).getFirst();
                    assertArrayEquals(rest, out.outputs().getFirst().tokenIdArray(), "prompt " + i);
                    assertArrayEquals(withStart, out.promptTokenIds().stream().mapToInt(Integer::intValue).toArray());
                }
            }
        }
    }

    /**
     * Requests whose decoder prompts are equal but whose encoder prompts differ share no block of the
     * prefix cache: the second gives what it gives alone, where reusing the first's blocks (keys and
     * values that the first's encoder shaped) would change it; the same request again is served from the cache.
     */
    @Test
    void equalDecoderPromptsAfterDifferentEncoderPromptsShareNoCachedBlock() {
        Case golden = Case.load("bart");
        int[] decoder = IntStream.range(0, 24).map(i -> 3 + 7 * i).toArray();
        Prompt first = Prompt.encoderDecoder(Prompt.tokens(golden.encoderPrompts().get(0)), decoder);
        Prompt second = Prompt.encoderDecoder(Prompt.tokens(golden.encoderPrompts().get(2)), decoder);
        int[] alone;
        try (LLM llm = llm(golden.directory())) {
            alone = llm.generatePrompts(List.of(second), GREEDY).getFirst().outputs().getFirst().tokenIdArray();
        }
        try (LLM llm = LLM.builder().model(golden.directory().toString()).device(device()).blockSize(8).enablePrefixCaching(true)
                .build()) {
            llm.generatePrompts(List.of(first), GREEDY);
            long hits = llm.metrics().prefixCacheHits();
            int[] after = llm.generatePrompts(List.of(second), GREEDY).getFirst().outputs().getFirst().tokenIdArray();
            assertEquals(hits, llm.metrics().prefixCacheHits(), "no block of the first request serves the second");
            assertArrayEquals(alone, after);
            llm.generatePrompts(List.of(second), GREEDY);
            assertTrue(llm.metrics().prefixCacheHits() > hits, "the same encoder and decoder prompts again hit the cache");
        }
    }

    @Test
    void tooLongPromptsTruncationAndWhatIsNotServedAreHandledByName() {
        Case golden = Case.load("bart");
        try (LLM llm = llm(golden.directory())) {
            int[] tooLong = IntStream.range(0, 129).map(i -> 3 + i * 7 % 500).toArray();
            var e = assertThrows(InvalidRequestException.class, () -> llm.generatePrompts(List.of(Prompt.tokens(tooLong)), GREEDY));
            assertTrue(e.getMessage().contains("129 tokens") && e.getMessage().contains("at most 128"), e.getMessage());
            var outside = assertThrows(InvalidRequestException.class,
                    () -> llm.generatePrompts(List.of(Prompt.tokens(0, 512, 2)), GREEDY));
            assertTrue(outside.getMessage().contains("512"), outside.getMessage());
            var kept = llm.generatePrompts(List.of(Prompt.tokens(tooLong)), GREEDY.toBuilder().truncatePromptTokens(128).build());
            var last = llm.generatePrompts(List.of(Prompt.tokens(java.util.Arrays.copyOfRange(tooLong, 1, 129))), GREEDY);
            assertArrayEquals(last.getFirst().outputs().getFirst().tokenIdArray(), kept.getFirst().outputs().getFirst().tokenIdArray(),
                    "truncatePromptTokens 128 keeps the encoder prompt's last 128 tokens");
            var decoderKept = llm.generatePrompts(List.of(Prompt.encoderDecoder(Prompt.tokens(tooLong), 7, 8, 9, 10)),
                    GREEDY.toBuilder().truncatePromptTokens(3).build());
            assertEquals(List.of(2, 7, 8, 9, 10), decoderKept.getFirst().promptTokenIds(), "the decoder's prompt is not truncated");
            assertThrows(InvalidRequestException.class, () -> llm.beamSearch(List.of(Prompt.tokens(golden.encoderPrompts().getFirst())),
                    new dev.jvllm.BeamSearchParams(2, 4)));
            var logprobs = assertThrows(InvalidRequestException.class, () -> llm.generatePrompts(
                    List.of(Prompt.tokens(golden.encoderPrompts().getFirst())), GREEDY.toBuilder().promptLogprobs(1).build()));
            assertInstanceOf(InvalidRequestException.class, logprobs);
            assertEquals("promptLogprobs", logprobs.field());
        }
    }

    /** Configs the classes do not serve are refused at load, naming the field. */
    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"bart:normalize_before:true", "t5:feed_forward_proj:\"gelu-gated-tanh\"",
            "t5:relative_attention_num_buckets:2", "bart:decoder_start_token_id:512", "t5:num_decoder_layers:0"})
    void configsItCannotServeAreRefusedByName(String change, @org.junit.jupiter.api.io.TempDir Path dir) throws IOException {
        String[] parts = change.split(":", 3);
        Case golden = Case.load(parts[0]);
        java.nio.file.Files.copy(golden.directory().resolve("model.safetensors"), dir.resolve("model.safetensors"));
        var json = new ObjectMapper();
        var config = (com.fasterxml.jackson.databind.node.ObjectNode) json.readTree(golden.directory().resolve("config.json").toFile());
        config.set(parts[1], json.readTree(parts[2]));
        json.writeValue(dir.resolve("config.json").toFile(), config);
        var e = assertThrows(dev.jvllm.config.ConfigException.class, () -> llm(dir).close());
        assertTrue(e.getMessage().contains(parts[1]), e.getMessage());
    }

    /**
     * A KV pool of four blocks for three requests that come to need two each: requests are preempted
     * and recomputed (their decoder tokens as a prompt, their encoder outputs kept or encoded again),
     * and each still gives its golden tokens first.
     */
    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"bart", "t5"})
    void preemptedRequestsGiveTheirGoldenTokens(String name) {
        Case golden = Case.load(name);
        // A block: 16 positions of each decoder layer's keys and values, in float32 (the goldens' type).
        ModelConfig config = ModelConfig.load(golden.directory());
        int layers = config.intOr(config.intOr(0, "num_layers"), "decoder_layers", "num_decoder_layers");
        int width = config.raw().has("d_kv") ? config.intOr(0, "num_heads") * config.intOr(0, "d_kv") : config.intOr(0, "d_model");
        long bytesPerBlock = 2L * layers * width * Float.BYTES * 16;
        try (LLM llm = LLM.builder().model(golden.directory().toString()).device(device()).maxModelLen(64)
                .kvCacheMemoryBytes(4 * bytesPerBlock).build()) {
            List<Prompt> prompts = golden.encoderPrompts().stream().map(Prompt::tokens).toList();
            // 24 new tokens: 24 positions, two blocks a request, six for the three.
            List<RequestOutput> outputs = llm.generatePrompts(prompts, GREEDY.toBuilder().maxTokens(24).build());
            assertTrue(llm.metrics().preemptions() > 0, "the pool is too small for the three at once: " + llm.metrics());
            for (int i = 0; i < prompts.size(); i++) {
                assertArrayEquals(golden.greedy().get(i),
                        java.util.Arrays.copyOf(outputs.get(i).outputs().getFirst().tokenIdArray(), 16), "prompt " + i);
            }
        }
    }
}
