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
}
