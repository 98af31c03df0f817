package dev.jvllm.engine;

import dev.jvllm.LLM;
import dev.jvllm.SamplingParams;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.nio.file.Files;
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
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * Batching and preemption never change greedy output on the golden mixture-of-experts checkpoints
 * (tools/reference/cases/moe.py): routing is per token, so a token's experts must not depend on
 * which other tokens share its step. Runs once the goldens are generated; MoeGoldenTest fails
 * until they are.
 */
class MoeContinuousBatchingTest {

    private static final SamplingParams GREEDY = greedy(24);

    private static void assumeGenerated(String model) {
        assumeTrue(Files.isDirectory(TinyLlamas.checkpoint("").resolve(model)), model + " goldens not generated yet");
    }

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"mixtral-top2", "qwen2-moe-shared", "qwen3-moe", "deepseek-v2-grouped", "deepseek-v3-noaux"})
    void promptsGeneratedTogetherGiveWhatEachGivesAlone(String model) {
        assumeGenerated(model);
        List<int[]> prompts = randomPrompts(1, 1, 7, 45, 3, 20, 33, 64, 16);
        List<List<Integer>> alone = aloneOutputs(model, 128, prompts, GREEDY);
        try (LLM llm = builder(model, 128).build()) {
            assertEquals(alone, tokens(llm.generatePrompts(asPrompts(prompts), GREEDY)));
            llm.engine().checkNoLeaks();
        }
    }

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"mixtral-top2", "deepseek-v3-noaux"})
    void preemptedRequestsFinishWithTheTokensTheyGiveAlone(String model) {
        assumeGenerated(model);
        List<int[]> prompts = randomPrompts(2, 20, 60, 33, 41, 27, 52);
        SamplingParams params = greedy(32);
        List<List<Integer>> alone = aloneOutputs(model, 96, prompts, params);
        try (LLM llm = builder(model, 96).kvCacheMemoryBytes(kvBytesForBlocks(model, 8)).maxNumBatchedTokens(12).build()) {
            assertEquals(alone, tokens(llm.generatePrompts(asPrompts(prompts), params)));
            assertTrue(llm.metrics().preemptions() > 0, "no request was preempted: " + llm.metrics());
            llm.engine().checkNoLeaks();
        }
    }
}
