package dev.jvllm.engine;

import dev.jvllm.LLM;
import dev.jvllm.RequestOutput;
import dev.jvllm.SamplingParams;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.FieldSource;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.ArrayList;
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
 * Async scheduling (a decode step queued before the tokens of the step ahead are read, those tokens
 * taken from the device's argmax) changes no output: greedy requests give the tokens each gives
 * alone, also when they stop on a token, are preempted, share cached prefixes or are aborted
 * mid-run, and every block is free afterwards. On the CPU the backend feeds the tokens from its
 * last argmax, so the engine's path is the one it takes on a GPU.
 */
class AsyncSchedulingTest {

    @ParameterizedTest(name = "{0}")
    @FieldSource("dev.jvllm.engine.TinyLlamas#CASES")
    void requestsOfDifferentLengthsGiveWhatEachGivesAlone(String model) {
        List<int[]> prompts = randomPrompts(11, 1, 7, 45, 3, 20, 33);
        List<SamplingParams> params = List.of(greedy(5), greedy(24), greedy(17), greedy(1), greedy(30), greedy(2));
        List<List<Integer>> alone = new ArrayList<>();
        for (int i = 0; i < prompts.size(); i++) {
            alone.add(aloneOutputs(model, 128, List.of(prompts.get(i)), params.get(i)).getFirst());
        }
        try (LLM llm = builder(model, 128).asyncScheduling(true).build()) {
            assertEquals(alone, generate(llm, prompts, params));
            assertTrue(llm.engine().stepsLaunchedAhead() > 20, "steps launched ahead: " + llm.engine().stepsLaunchedAhead());
            llm.engine().checkNoLeaks();
        }
    }

    @ParameterizedTest(name = "prefix caching {0}")
    @ValueSource(booleans = {true, false})
    void requestsWaitingForASeatJoinStepsQueuedAhead(boolean prefixCaching) {
        // Two seats for seven requests: the waiting ones are admitted into steps queued ahead.
        List<int[]> prompts = randomPrompts(17, 5, 40, 18, 33, 9, 27, 50);
        SamplingParams params = greedy(14);
        List<List<Integer>> alone = aloneOutputs("llama3-rope", 128, prompts, params);
        try (LLM llm = builder("llama3-rope", 128).maxNumSeqs(2).enablePrefixCaching(prefixCaching)
                .asyncScheduling(true).build()) {
            assertEquals(alone, tokens(llm.generatePrompts(asPrompts(prompts), params)));
            assertTrue(llm.engine().stepsLaunchedAhead() > 40, "steps launched ahead: " + llm.engine().stepsLaunchedAhead());
            llm.engine().checkNoLeaks();
        }
    }

    @Test
    void aRequestThatStopsOnATokenEndsThereWhileTheOthersGoOn() {
        List<int[]> prompts = randomPrompts(12, 9, 26, 14);
        SamplingParams free = greedy(20);
        List<List<Integer>> unstopped = aloneOutputs("llama-gqa", 128, prompts, free);
        // Each request stops on the token it gives at its 4th, 9th and 14th output.
        List<SamplingParams> params = new ArrayList<>();
        List<List<Integer>> expected = new ArrayList<>();
        int[] stopAt = {3, 8, 13};
        for (int i = 0; i < prompts.size(); i++) {
            List<Integer> tokens = unstopped.get(i);
            int stopToken = tokens.get(stopAt[i]);
            int first = tokens.indexOf(stopToken);
            params.add(SamplingParams.builder().temperature(0).ignoreEos(true).maxTokens(20)
                    .stopTokenIds(List.of(stopToken)).build());
            expected.add(tokens.subList(0, first + 1));
        }
        try (LLM llm = builder("llama-gqa", 128).asyncScheduling(true).build()) {
            List<List<Integer>> outputs = generate(llm, prompts, params);
            for (int i = 0; i < prompts.size(); i++) {
                List<Integer> got = outputs.get(i);
                assertEquals(expected.get(i).subList(0, Math.min(expected.get(i).size(), got.size())),
                        got.subList(0, Math.min(expected.get(i).size(), got.size())));
            }
            List<List<Integer>> sync;
            try (LLM plain = builder("llama-gqa", 128).build()) {
                sync = generate(plain, prompts, params);
            }
            assertEquals(sync, outputs);
            assertTrue(llm.engine().stepsLaunchedAhead() > 0);
            llm.engine().checkNoLeaks();
        }
    }

    @ParameterizedTest(name = "prefix caching {0}")
    @ValueSource(booleans = {true, false})
    void preemptedRequestsStillGiveTheirTokens(boolean prefixCaching) {
        List<int[]> prompts = randomPrompts(13, 20, 60, 33, 41, 27, 52);
        SamplingParams params = greedy(32);
        List<List<Integer>> alone = aloneOutputs("llama-gqa", 96, prompts, params);
        try (LLM llm = builder("llama-gqa", 96).kvCacheMemoryBytes(kvBytesForBlocks("llama-gqa", 8))
                .enablePrefixCaching(prefixCaching).asyncScheduling(true).build()) {
            assertEquals(alone, tokens(llm.generatePrompts(asPrompts(prompts), params)));
            assertTrue(llm.metrics().preemptions() > 0, "no request was preempted: " + llm.metrics());
            llm.engine().checkNoLeaks();
        }
    }

    @Test
    void aSecondRoundOnTheSamePromptsHitsTheBlocksTheFirstCached() {
        List<int[]> prompts = randomPrompts(14, 40, 37, 50);
        SamplingParams params = greedy(20);
        List<List<Integer>> alone = aloneOutputs("llama3-rope", 128, prompts, params);
        try (LLM llm = builder("llama3-rope", 128).enablePrefixCaching(true).asyncScheduling(true).build()) {
            assertEquals(alone, tokens(llm.generatePrompts(asPrompts(prompts), params)));
            long hitsBefore = llm.metrics().prefixCacheHits();
            assertEquals(alone, tokens(llm.generatePrompts(asPrompts(prompts), params)));
            assertTrue(llm.metrics().prefixCacheHits() - hitsBefore >= 2 * 16 * 3,
                    "the second round hit " + (llm.metrics().prefixCacheHits() - hitsBefore) + " tokens");
            llm.engine().checkNoLeaks();
        }
    }

    @Test
    void abortingOneRequestBetweenStepsLeavesTheOthersOutputUnchanged() {
        List<int[]> prompts = randomPrompts(15, 12, 30);
        SamplingParams params = greedy(25);
        List<List<Integer>> alone = aloneOutputs("llama-plain", 128, prompts, params);
        try (LLM llm = builder("llama-plain", 128).asyncScheduling(true).build()) {
            LLMEngine engine = llm.engine();
            engine.addRequest("kept", prompts.get(0), params);
            engine.addRequest("aborted", prompts.get(1), params);
            List<Integer> kept = List.of();
            for (int step = 0; step < 6; step++) kept = lastTokens(engine.step(), "kept", kept);
            assertTrue(engine.abort("aborted"));
            while (engine.hasUnfinishedRequests()) kept = lastTokens(engine.step(), "kept", kept);
            assertEquals(alone.get(0), kept);
            assertTrue(engine.stepsLaunchedAhead() > 0);
            engine.checkNoLeaks();
        }
    }

    @Test
    void sampledRequestsBesideGreedyOnesGiveWhatTheyGiveWithoutIt() {
        List<int[]> prompts = randomPrompts(16, 10, 22, 31);
        List<SamplingParams> params = List.of(greedy(16),
                SamplingParams.builder().temperature(0.8).topP(0.9).seed(7).ignoreEos(true).maxTokens(16).build(),
                greedy(12));
        List<List<Integer>> sync;
        try (LLM llm = builder("llama-tied", 128).build()) {
            sync = generate(llm, prompts, params);
        }
        try (LLM llm = builder("llama-tied", 128).asyncScheduling(true).build()) {
            assertEquals(sync, generate(llm, prompts, params));
            llm.engine().checkNoLeaks();
        }
    }

    /** Each prompt with its own parameters, all added to the engine together; outputs' tokens in order. */
    private static List<List<Integer>> generate(LLM llm, List<int[]> prompts, List<SamplingParams> params) {
        LLMEngine engine = llm.engine();
        List<List<Integer>> outputs = new ArrayList<>();
        for (int i = 0; i < prompts.size(); i++) {
            engine.addRequest("r" + i, prompts.get(i), params.get(i));
            outputs.add(null);
        }
        while (engine.hasUnfinishedRequests()) {
            for (RequestOutput output : engine.step()) {
                if (output.finished()) {
                    outputs.set(Integer.parseInt(output.requestId().substring(1)), output.outputs().getFirst().tokenIds());
                }
            }
        }
        return outputs;
    }

    private static List<Integer> lastTokens(List<RequestOutput> outputs, String requestId, List<Integer> before) {
        for (RequestOutput output : outputs) {
            if (output.requestId().equals(requestId)) return output.outputs().getFirst().tokenIds();
        }
        return before;
    }
}
