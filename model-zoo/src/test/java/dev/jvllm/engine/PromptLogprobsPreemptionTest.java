package dev.jvllm.engine;

import dev.jvllm.LLM;
import dev.jvllm.Logprob;
import dev.jvllm.RequestOutput;
import dev.jvllm.SamplingParams;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Prompt logprobs survive preemption under chunked prefill: a request recomputed after losing its
 * blocks, in chunks that need not line up with the first ones, still reports one entry a prompt token,
 * with the values an engine with room to spare gives.
 */
class PromptLogprobsPreemptionTest {

    @Test
    void everyPromptTokenKeepsItsLogprobsWhenItsRequestIsPreemptedAndRecomputedInOtherChunks() {
        Random random = new Random(3);
        List<int[]> prompts = new ArrayList<>();
        for (int i = 0; i < 8; i++) prompts.add(random.ints(36 + 5 * i, 3, 2000).toArray());
        SamplingParams params = SamplingParams.builder().temperature(0).ignoreEos(true).maxTokens(24).promptLogprobs(1).build();
        List<RequestOutput> roomy, tight;
        try (LLM llm = LLM.builder().model(DemoModel.path().toString()).device("cpu").maxModelLen(100).blockSize(4).build()) {
            roomy = llm.generatePrompts(prompts.stream().map(dev.jvllm.Prompt::tokens).toList(), params);
        }
        // 40 blocks of 4 tokens (4 layers x 4 KV heads x 32 x keys and values, float32: 16 KiB a block).
        try (LLM llm = LLM.builder().model(DemoModel.path().toString()).device("cpu").maxModelLen(100).blockSize(4)
                .kvCacheMemoryBytes(40L * 16 * 1024).maxNumBatchedTokens(21).enablePrefixCaching(false).build()) {
            tight = llm.generatePrompts(prompts.stream().map(dev.jvllm.Prompt::tokens).toList(), params);
            assertTrue(llm.metrics().preemptions() > 0, "no request was preempted: " + llm.metrics());
            llm.engine().checkNoLeaks();
        }
        for (int i = 0; i < prompts.size(); i++) {
            List<Map<Integer, Logprob>> expected = roomy.get(i).promptLogprobs(), actual = tight.get(i).promptLogprobs();
            assertEquals(prompts.get(i).length, actual.size(), "request " + i + ": one entry a prompt token");
            for (int p = 1; p < expected.size(); p++) {
                for (var e : expected.get(p).entrySet()) {
                    assertEquals(e.getValue().logprob(), actual.get(p).get(e.getKey()).logprob(), 1e-3, "request " + i + ", position " + p);
                }
            }
        }
    }
}
