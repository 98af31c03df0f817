package dev.jvllm.engine;

import dev.jvllm.LLM;
import dev.jvllm.SamplingParams;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.FieldSource;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.List;

import static dev.jvllm.engine.TinyLlamas.aloneOutputs;
import static dev.jvllm.engine.TinyLlamas.asPrompts;
import static dev.jvllm.engine.TinyLlamas.builder;
import static dev.jvllm.engine.TinyLlamas.greedy;
import static dev.jvllm.engine.TinyLlamas.kvBytesForBlocks;
import static dev.jvllm.engine.TinyLlamas.randomPrompts;
import static dev.jvllm.engine.TinyLlamas.tokens;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Batching never changes greedy output: prompts run together, under a KV pool so small that
 * requests are preempted and recomputed, or prefilled in small chunks, give exactly the tokens each
 * gives alone; and afterwards every block is free again.
 */
class ContinuousBatchingTest {

    private static final SamplingParams GREEDY = greedy(24);

    @ParameterizedTest(name = "{0}")
    @FieldSource("dev.jvllm.engine.TinyLlamas#CASES")
    void promptsOfDifferentLengthsGeneratedTogetherGiveWhatEachGivesAlone(String model) {
        List<int[]> prompts = randomPrompts(1, 1, 7, 45, 3, 20, 33, 64, 16);
        List<List<Integer>> alone = aloneOutputs(model, 128, prompts, GREEDY);
        try (LLM llm = builder(model, 128).build()) {
            assertEquals(alone, tokens(llm.generatePrompts(asPrompts(prompts), GREEDY)));
            llm.engine().checkNoLeaks();
        }
    }

    @ParameterizedTest(name = "top-p {0}")
    @ValueSource(doubles = {1.0, 0.9, 0.5})
    void seededSampledRequestsDrawnTogetherGiveWhatEachGivesAlone(double topP) {
        // Rows drawn on the host at once (several threads) must each follow their own generator.
        List<int[]> prompts = randomPrompts(5, 9, 30, 4, 22, 41, 13, 2, 17);
        SamplingParams params = SamplingParams.builder().temperature(0.9).topP(topP).seed(11).ignoreEos(true)
                .maxTokens(20).build();
        List<List<Integer>> alone = aloneOutputs("llama3-rope", 128, prompts, params);
        try (LLM llm = builder("llama3-rope", 128).build()) {
            assertEquals(alone, tokens(llm.generatePrompts(asPrompts(prompts), params)));
            llm.engine().checkNoLeaks();
        }
    }

    @ParameterizedTest(name = "prefix caching {0}")
    @ValueSource(booleans = {true, false})
    void preemptedRequestsFinishWithTheTokensTheyGiveAlone(boolean prefixCaching) {
        // Each request grows to 3 to 6 blocks; 8 blocks cannot hold them all at once.
        List<int[]> prompts = randomPrompts(2, 20, 60, 33, 41, 27, 52);
        SamplingParams params = greedy(32);
        List<List<Integer>> alone = aloneOutputs("llama-gqa", 96, prompts, params);
        try (LLM llm = builder("llama-gqa", 96).kvCacheMemoryBytes(kvBytesForBlocks("llama-gqa", 8))
                .enablePrefixCaching(prefixCaching).build()) {
            assertEquals(alone, tokens(llm.generatePrompts(asPrompts(prompts), params)));
            assertTrue(llm.metrics().preemptions() > 0, "no request was preempted: " + llm.metrics());
            llm.engine().checkNoLeaks();
        }
    }

    @ParameterizedTest(name = "budget of {0} tokens")
    @ValueSource(ints = {1, 5, 16})
    void chunkedPrefillWithASmallTokenBudgetEqualsUnchunked(int budget) {
        List<int[]> prompts = randomPrompts(3, 45, 64, 7, 30);
        List<List<Integer>> unchunked = aloneOutputs("llama3-rope", 128, prompts, GREEDY);
        try (LLM llm = builder("llama3-rope", 128).maxNumBatchedTokens(budget).build()) {
            assertEquals(unchunked, tokens(llm.generatePrompts(asPrompts(prompts), GREEDY)));
            llm.engine().checkNoLeaks();
        }
    }

    @ParameterizedTest(name = "prefix caching {0}")
    @ValueSource(booleans = {true, false})
    void preemptionUnderChunkedPrefillStillGivesTheSameTokens(boolean prefixCaching) {
        List<int[]> prompts = randomPrompts(4, 50, 35, 62, 18, 44);
        SamplingParams params = greedy(30);
        List<List<Integer>> alone = aloneOutputs("llama-tied", 96, prompts, params);
        try (LLM llm = builder("llama-tied", 96).kvCacheMemoryBytes(kvBytesForBlocks("llama-tied", 7))
                .maxNumBatchedTokens(12).enablePrefixCaching(prefixCaching).build()) {
            assertEquals(alone, tokens(llm.generatePrompts(asPrompts(prompts), params)));
            assertTrue(llm.metrics().preemptions() > 0, "no request was preempted: " + llm.metrics());
            llm.engine().checkNoLeaks();
        }
    }

    /** Prompts that repeat a run of random tokens, so that prompt lookup finds guesses. */
    private static List<int[]> repeatingPrompts(long seed, int... runLengths) {
        List<int[]> prompts = new java.util.ArrayList<>();
        for (int[] run : randomPrompts(seed, runLengths)) {
            int[] prompt = new int[run.length * 3 + 2];
            for (int i = 0; i < prompt.length; i++) prompt[i] = run[i % run.length];
            prompts.add(prompt);
        }
        return prompts;
    }

    @ParameterizedTest(name = "{0}")
    @FieldSource("dev.jvllm.engine.TinyLlamas#CASES")
    void speculativeDecodingGivesTheTokensEachGivesAloneWithout(String model) {
        List<int[]> prompts = repeatingPrompts(6, 5, 9, 3, 12, 7, 4);
        prompts.addAll(randomPrompts(7, 1, 30));
        List<List<Integer>> alone = aloneOutputs(model, 128, prompts, GREEDY);
        try (LLM llm = builder(model, 128).speculativeConfig(dev.jvllm.SpeculativeConfig.ngram(5, 1, 3)).build()) {
            assertEquals(alone, tokens(llm.generatePrompts(asPrompts(prompts), GREEDY)));
            assertTrue(llm.metrics().acceptedDraftTokens() > 0, "no guess was kept: " + llm.metrics());
            llm.engine().checkNoLeaks();
        }
    }

    @ParameterizedTest(name = "prefix caching {0}")
    @ValueSource(booleans = {true, false})
    void speculativeDecodingUnderPreemptionAndSmallBudgetsStillGivesTheSameTokens(boolean prefixCaching) {
        List<int[]> prompts = repeatingPrompts(8, 14, 9, 17, 11, 20);
        SamplingParams params = greedy(30);
        List<List<Integer>> alone = aloneOutputs("llama-tied", 96, prompts, params);
        try (LLM llm = builder("llama-tied", 96).kvCacheMemoryBytes(kvBytesForBlocks("llama-tied", 8))
                .maxNumBatchedTokens(12).enablePrefixCaching(prefixCaching)
                .speculativeConfig(dev.jvllm.SpeculativeConfig.ngram(4, 2, 4)).build()) {
            assertEquals(alone, tokens(llm.generatePrompts(asPrompts(prompts), params)));
            assertTrue(llm.metrics().preemptions() > 0, "no request was preempted: " + llm.metrics());
            assertTrue(llm.metrics().acceptedDraftTokens() > 0, "no guess was kept: " + llm.metrics());
            llm.engine().checkNoLeaks();
        }
    }

    /**
     * Runs {@code body} on an engine of {@code model} with {@code settings} on the CPU backend posing as
     * one that records passes (it runs each pass it is given as it is), {@code recordedTokensEach}
     * taking the tokens a sequence of each step handed to it for recording.
     */
    private static void onRecordingCpu(String model, dev.jvllm.EngineConfig settings, List<Integer> recordedTokensEach,
                                       java.util.function.Consumer<LLMEngine> body) {
        java.nio.file.Path dir = TinyLlamas.checkpoint(model);
        dev.jvllm.config.ModelConfig config = dev.jvllm.config.ModelConfig.load(dir);
        try (dev.jvllm.weights.Checkpoint checkpoint = dev.jvllm.weights.Checkpoint.open(dir);
             dev.jvllm.spi.Backend backend = TinyLlamas.withOverrides(
                     dev.jvllm.spi.Backends.create("cpu", new dev.jvllm.spi.BackendOptions(1)),
                     java.util.Map.of("capturesGraphs", args -> true, "runCaptured", args -> {
                         recordedTokensEach.add(((CapturedDecode.Shape) args[0]).tokensEach());
                         return ((java.util.function.Supplier<?>) args[1]).get();
                     }));
             dev.jvllm.spi.CausalLM causal = dev.jvllm.spi.ModelRegistry.find(config)
                     .load(new dev.jvllm.spi.ModelContext(config, checkpoint, backend, settings.maxModelLen()));
             LLMEngine engine = new LLMEngine(causal, backend, null, List.of(), settings.maxModelLen(), settings)) {
            body.accept(engine);
            engine.checkNoLeaks();
        }
    }

    /**
     * Where a backend records passes, a small step's guesses are padded to one count a request (each
     * padded step one shape): the CPU backend posing as one that records gives the tokens each prompt
     * gives alone without speculation, as shrinking batches of sequences that found different numbers
     * of guesses, or none, run together.
     */
    @ParameterizedTest(name = "{0}")
    @FieldSource("dev.jvllm.engine.TinyLlamas#CASES")
    void guessesPaddedToOneShapeAStepGiveTheSameTokens(String model) {
        List<int[]> prompts = repeatingPrompts(9, 5, 9, 3, 12);
        prompts.addAll(randomPrompts(10, 1, 30));
        List<List<Integer>> alone = aloneOutputs(model, 128, prompts, greedy(32));
        List<Integer> recorded = new java.util.ArrayList<>();
        dev.jvllm.EngineConfig settings = new dev.jvllm.EngineConfig(128, TinyLlamas.BLOCK_SIZE, 0, 256, 2048, true, 0L,
                "cpu", 1, 0.9, false, false, 0, dev.jvllm.SpeculativeConfig.ngram(3, 1, 3));
        onRecordingCpu(model, settings, recorded, engine -> {
            for (int i = 0; i < prompts.size(); i++) engine.addRequest("r" + i, prompts.get(i), greedy(4 + 5 * i));
            java.util.Map<String, List<Integer>> tokens = EngineRuns.finishedTokens(engine);
            for (int i = 0; i < prompts.size(); i++) {
                assertEquals(alone.get(i).subList(0, 4 + 5 * i), tokens.get("r" + i), "request " + i);
            }
            assertTrue(engine.metrics().acceptedDraftTokens() > 0, "no guess was kept: " + engine.metrics());
        });
        assertTrue(recorded.stream().anyMatch(n -> n > 1), "no step of guesses ran in a recordable shape: " + recorded);
    }

    /** A prompt chunk of as many tokens a sequence with prompt logprobs (every row's logits) is not recorded: only guessing steps are. */
    @org.junit.jupiter.api.Test
    void promptStepsAreNeverRecordedAsGraphs() {
        List<Integer> recorded = new java.util.ArrayList<>();
        dev.jvllm.EngineConfig settings = new dev.jvllm.EngineConfig(128, TinyLlamas.BLOCK_SIZE, 0, 256, 2048, true, 0L,
                "cpu", 1, 0.9, false, false);
        onRecordingCpu("llama-gqa", settings, recorded, engine -> {
            SamplingParams params = SamplingParams.builder().temperature(0).ignoreEos(true).maxTokens(6).promptLogprobs(1).build();
            engine.addRequest("a", randomPrompts(11, 10).getFirst(), params);
            EngineRuns.finishedTokens(engine);
        });
        assertTrue(!recorded.isEmpty() && recorded.stream().allMatch(n -> n == 1), "recorded steps of tokens each: " + recorded);
    }
}
