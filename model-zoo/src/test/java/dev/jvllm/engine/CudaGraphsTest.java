package dev.jvllm.engine;

import dev.jvllm.EngineConfig;
import dev.jvllm.SamplingParams;
import dev.jvllm.config.ModelConfig;
import dev.jvllm.cuda.CudaBackend;
import dev.jvllm.models.RuntimeAssumptions;
import dev.jvllm.spi.Backend;
import dev.jvllm.spi.BackendOptions;
import dev.jvllm.spi.Backends;
import dev.jvllm.spi.CausalLM;
import dev.jvllm.spi.ModelContext;
import dev.jvllm.spi.ModelRegistry;
import dev.jvllm.weights.Checkpoint;
import dev.jvllm.weights.DType;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static dev.jvllm.engine.TinyLlamas.greedy;
import static dev.jvllm.engine.TinyLlamas.randomPrompts;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Decode steps replayed as CUDA graphs give the tokens eager steps give, in float32 (where the
 * kernels are exact enough for greedy tokens to agree), as batches shrink, grow and their
 * contexts cross block-table sizes. Skipped, with the reason, where there is no GPU.
 */
class CudaGraphsTest {

    private static final int MAX_MODEL_LEN = 256;

    @BeforeEach
    void requireGpu() {
        RuntimeAssumptions.requireGpu();
    }

    private record Run(Map<String, List<Integer>> tokens, int graphs, long launches, long launchedAhead) {
    }

    private static Run generate(String name, boolean enforceEager, List<int[]> prompts) {
        return generate(name, enforceEager, false, 256, prompts);
    }

    /** Prompt i generates 10 + 12 i tokens, so the batch shrinks as the run goes on. */
    private static Run generate(String name, boolean enforceEager, boolean asyncScheduling, int maxNumSeqs,
                                List<int[]> prompts) {
        Path dir = TinyLlamas.checkpoint(name);
        ModelConfig config = ModelConfig.load(dir);
        try (Checkpoint checkpoint = Checkpoint.open(dir);
             Backend backend = Backends.create("cuda", new BackendOptions(0, DType.F32))) {
            CausalLM model = ModelRegistry.find(config).load(new ModelContext(config, checkpoint, backend, MAX_MODEL_LEN));
            EngineConfig settings = new EngineConfig(MAX_MODEL_LEN, 16, 8L << 20, maxNumSeqs, 256, false, 0L, "cuda", 0,
                    0.9, enforceEager, asyncScheduling);
            LLMEngine engine = new LLMEngine(model, backend, null, List.of(), MAX_MODEL_LEN, settings);
            for (int i = 0; i < prompts.size(); i++) engine.addRequest("r" + i, prompts.get(i), greedy(10 + 12 * i));
            Map<String, List<Integer>> tokens = EngineRuns.finishedTokens(engine);
            engine.checkNoLeaks();
            CudaBackend cuda = (CudaBackend) backend;
            return new Run(tokens, cuda.capturedGraphs(), cuda.graphLaunches(), engine.stepsLaunchedAhead());
        }
    }

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"llama-gqa", "llama3-rope", "mistral-sliding", "gemma2-softcap", "falcon-alibi"})
    void graphReplaysGiveTheTokensOfEagerSteps(String name) {
        List<int[]> prompts = randomPrompts(7, 3, 40, 17, 9, 60, 1, 25);
        Run eager = generate(name, true, prompts);
        Run graphs = generate(name, false, prompts);
        assertEquals(0, eager.launches(), "enforceEager launched no graph");
        assertEquals(eager.tokens(), graphs.tokens());
        assertTrue(graphs.graphs() >= 3, "decode batches of 8, 4, 2 and 1 sequences were captured: " + graphs.graphs());
        assertTrue(graphs.launches() > 50, "most decode steps ran as graph launches: " + graphs.launches());
    }

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"llama-gqa", "llama3-rope", "falcon-alibi"})
    void asyncSchedulingGivesTheTokensOfStepsReadOneByOne(String name) {
        List<int[]> prompts = randomPrompts(9, 3, 40, 17, 9, 60, 1, 25);
        Run plain = generate(name, false, false, 256, prompts);
        Run async = generate(name, false, true, 256, prompts);
        Run asyncEager = generate(name, true, true, 256, prompts);
        assertEquals(plain.tokens(), async.tokens());
        assertEquals(plain.tokens(), asyncEager.tokens());
        assertTrue(async.launchedAhead() > 50, "most decode steps were queued ahead: " + async.launchedAhead());
        assertTrue(asyncEager.launchedAhead() > 50, "eager steps too: " + asyncEager.launchedAhead());
        assertTrue(async.launches() > 50, "with graphs replayed, two per shape: " + async.launches() + " launches of "
                + async.graphs() + " graphs");
    }

    @Test
    void requestsWaitingForASeatJoinStepsQueuedAheadWithTheSameTokens() {
        List<int[]> prompts = randomPrompts(10, 3, 40, 17, 9, 60, 1, 25);
        Run plain = generate("llama-gqa", false, false, 256, prompts);
        Run async = generate("llama-gqa", false, true, 3, prompts);
        assertEquals(plain.tokens(), async.tokens());
        assertTrue(async.launchedAhead() > 100, "steps queued ahead with requests waiting: " + async.launchedAhead());
    }

    @Test
    void seededSampledRequestsDrawTheSameTokensOnTheDeviceAsOnTheHost() {
        List<SamplingParams> params = List.of(
                SamplingParams.builder().temperature(0.8).seed(3).ignoreEos(true).maxTokens(18).build(),
                greedy(12),
                SamplingParams.builder().temperature(1.1).topP(0.7).seed(4).ignoreEos(true).maxTokens(20).build(),
                SamplingParams.builder().temperature(0.6).topK(5).minP(0.05f).seed(5).ignoreEos(true).maxTokens(15).build());
        List<int[]> prompts = randomPrompts(11, 9, 30, 4, 22);
        Map<String, List<Integer>> host = generateSampled(false, prompts, params);
        Map<String, List<Integer>> device = generateSampled(true, prompts, params);
        assertEquals(host, device);
    }

    /** Request i with params i, on the GPU in float32, its rows drawn on the device or on the host. */
    private static Map<String, List<Integer>> generateSampled(boolean onDevice, List<int[]> prompts,
                                                              List<SamplingParams> params) {
        Path dir = TinyLlamas.checkpoint("llama-gqa");
        ModelConfig config = ModelConfig.load(dir);
        try (Checkpoint checkpoint = Checkpoint.open(dir);
             Backend cuda = Backends.create("cuda", new BackendOptions(0, DType.F32))) {
            Backend backend = TinyLlamas.withOverrides(cuda, Map.of("samplesOnDevice", args -> onDevice));
            CausalLM model = ModelRegistry.find(config).load(new ModelContext(config, checkpoint, backend, MAX_MODEL_LEN));
            EngineConfig settings = new EngineConfig(MAX_MODEL_LEN, 16, 8L << 20, 256, 256, false, 0L, "cuda", 0, 0.9,
                    false, true);
            LLMEngine engine = new LLMEngine(model, backend, null, List.of(), MAX_MODEL_LEN, settings);
            for (int i = 0; i < prompts.size(); i++) engine.addRequest("r" + i, prompts.get(i), params.get(i));
            Map<String, List<Integer>> tokens = EngineRuns.finishedTokens(engine);
            engine.checkNoLeaks();
            return tokens;
        }
    }

    /**
     * Speculative decoding: steps in which every sequence verifies as many guesses replay as graphs of
     * their own shape, and the tokens are those of plain eager decoding (float32). The tiny random
     * models repeat themselves, so nearly every step after the prompts verifies guesses: were those steps
     * run eagerly, nearly no graph would be launched (on an H200: 8 of llama3-rope's 16 steps were graphs).
     */
    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"llama-gqa", "llama3-rope", "mistral-sliding"})
    void stepsVerifyingGuessesReplayAsGraphsWithTheTokensOfPlainSteps(String name) {
        List<int[]> prompts = new java.util.ArrayList<>();
        for (int[] run : randomPrompts(12, 5, 9, 3, 12, 7)) {
            int[] prompt = new int[run.length * 3];
            for (int i = 0; i < prompt.length; i++) prompt[i] = run[i % run.length];
            prompts.add(prompt);
        }
        Run plain = generate(name, true, prompts);
        Path dir = TinyLlamas.checkpoint(name);
        ModelConfig config = ModelConfig.load(dir);
        try (Checkpoint checkpoint = Checkpoint.open(dir);
             Backend backend = Backends.create("cuda", new BackendOptions(0, DType.F32))) {
            CausalLM model = ModelRegistry.find(config).load(new ModelContext(config, checkpoint, backend, MAX_MODEL_LEN));
            EngineConfig settings = new EngineConfig(MAX_MODEL_LEN, 16, 8L << 20, 256, 256, false, 0L, "cuda", 0, 0.9,
                    false, true, 0, dev.jvllm.SpeculativeConfig.ngram(3, 1, 3));
            LLMEngine engine = new LLMEngine(model, backend, null, List.of(), MAX_MODEL_LEN, settings);
            for (int i = 0; i < prompts.size(); i++) engine.addRequest("r" + i, prompts.get(i), greedy(10 + 12 * i));
            assertEquals(plain.tokens(), EngineRuns.finishedTokens(engine));
            engine.checkNoLeaks();
            var metrics = engine.metrics();
            long launches = ((CudaBackend) backend).graphLaunches();
            assertTrue(metrics.acceptedDraftTokens() > 0, "no guess was kept: " + metrics);
            // Eager: the prompts' step, and the steps where a request near its max_tokens has no room for as many guesses.
            assertTrue(launches >= metrics.steps() / 3, launches + " graph launches in " + metrics);
        }
    }

    @Test
    void aModelThatReadsBackMidPassRunsEagerlyWithTheSameTokens() {
        List<int[]> prompts = randomPrompts(8, 5, 12, 30);
        Run eager = generate("deepseek-v2-grouped", true, prompts);
        Run graphs = generate("deepseek-v2-grouped", false, prompts);
        assertEquals(eager.tokens(), graphs.tokens());
    }
}
