package dev.jvllm.engine;

import dev.jvllm.CompletionOutput;
import dev.jvllm.FinishReason;
import dev.jvllm.InvalidRequestException;
import dev.jvllm.JvllmException;
import dev.jvllm.LLM;
import dev.jvllm.RequestOutput;
import dev.jvllm.SamplingParams;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.List;
import java.util.Map;

import static dev.jvllm.engine.TinyLlamas.aloneOutputs;
import static dev.jvllm.engine.TinyLlamas.builder;
import static dev.jvllm.engine.TinyLlamas.greedy;
import static dev.jvllm.engine.TinyLlamas.kvBytesForBlocks;
import static dev.jvllm.engine.TinyLlamas.randomPrompts;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Who holds KV blocks, and for how long: aborts free at once, nothing leaks, requests that can never
 * fit are turned away without disturbing the others, and the n sequences of a request share its prompt.
 */
class KvCacheLifecycleTest {

    private static final SamplingParams GREEDY = greedy(20);

    @Test
    void everyBlockIsFreeAfterRequestsFinishOrAreAborted() {
        List<int[]> prompts = randomPrompts(20, 30, 50, 12, 64, 40, 22);
        try (LLM llm = builder("llama-plain", 128).kvCacheMemoryBytes(kvBytesForBlocks("llama-plain", 10)).build()) {
            LLMEngine engine = llm.engine();
            for (int i = 0; i < prompts.size(); i++) engine.addRequest("r" + i, prompts.get(i), GREEDY);
            engine.step();
            engine.step();
            assertTrue(engine.abort("r1"), "a running request");
            assertTrue(engine.abort("r5"), "a waiting request");
            while (engine.hasUnfinishedRequests()) engine.step();
            assertEquals(0, llm.metrics().kvBlocksUsed());
            assertEquals(0, llm.metrics().running() + llm.metrics().waiting());
            engine.checkNoLeaks();
        }
    }

    @Test
    void abortMidGenerationFreesItsBlocksAtOnce() {
        try (LLM llm = builder("llama-gqa", 128).build()) {
            LLMEngine engine = llm.engine();
            engine.addRequest("long", randomPrompts(21, 40).getFirst(), greedy(80));
            for (int i = 0; i < 5; i++) engine.step();
            assertEquals(3, llm.metrics().kvBlocksUsed(), "40 prompt + 4 output tokens in blocks of 16");
            assertTrue(engine.abort("long"));
            assertEquals(0, llm.metrics().kvBlocksUsed());
            assertTrue(!engine.hasUnfinishedRequests());
            engine.checkNoLeaks();
        }
    }

    @Test
    void abortedRequestEndsWithReasonAbortAndItsOutputSoFar() {
        try (LLM llm = builder("llama-gqa", 128).build()) {
            LLMEngine engine = llm.engine();
            engine.addRequest("a", randomPrompts(22, 10).getFirst(), greedy(50));
            for (int i = 0; i < 4; i++) engine.step();
            RequestOutput out = engine.abortWithOutput("a");
            assertTrue(out.finished());
            CompletionOutput sequence = out.outputs().getFirst();
            assertEquals(FinishReason.ABORT, sequence.finishReason());
            assertEquals(4, sequence.tokenIds().size());
            assertTrue(!engine.abort("a"), "an aborted request is gone");
        }
    }

    @Test
    void promptLongerThanMaxModelLenIsRejectedAndOthersFinishUnchanged() {
        List<int[]> prompts = randomPrompts(23, 25, 37);
        List<List<Integer>> alone = aloneOutputs("llama-plain", 64, prompts, GREEDY);
        try (LLM llm = builder("llama-plain", 64).build()) {
            LLMEngine engine = llm.engine();
            engine.addRequest("a", prompts.get(0), GREEDY);
            engine.addRequest("b", prompts.get(1), GREEDY);
            engine.step();
            var e = assertThrows(InvalidRequestException.class,
                    () -> engine.addRequest("too-long", randomPrompts(24, 64).getFirst(), GREEDY));
            assertTrue(e.getMessage().contains("64 tokens") && e.getMessage().contains("maximum model length is 64"),
                    e.getMessage());
            Map<String, List<Integer>> finished = EngineRuns.finishedTokens(engine);
            assertEquals(Map.of("a", alone.get(0), "b", alone.get(1)), finished);
            engine.checkNoLeaks();
        }
    }

    @Test
    void outputStopsAtMaxModelLenWithReasonLength() {
        try (LLM llm = builder("llama-plain", 48).build()) {
            RequestOutput out = llm.generate(randomPrompts(25, 40).getFirst(), greedy(100));
            assertEquals(8, out.outputs().getFirst().tokenIds().size());
            assertEquals(FinishReason.LENGTH, out.outputs().getFirst().finishReason());
        }
    }

    @Test
    void maxModelLenLargerThanThePoolFailsAtStartupNamingTheLargestLengthThatFits() {
        var e = assertThrows(JvllmException.class,
                () -> builder("llama-plain", 128).kvCacheMemoryBytes(kvBytesForBlocks("llama-plain", 5)).build());
        assertTrue(e.getMessage().contains("largest length that fits is 80"), e.getMessage());
    }

    @ParameterizedTest(name = "prefix caching {0}")
    @ValueSource(booleans = {true, false})
    void parallelSamplesShareThePromptBlocksAndEachEqualsItsSeededSingleRun(boolean prefixCaching) {
        int[] prompt = randomPrompts(26, 64).getFirst();
        SamplingParams.Builder sampling = SamplingParams.builder().temperature(1.0).seed(7).ignoreEos(true).maxTokens(8);
        try (LLM llm = builder("llama-plain", 128).enablePrefixCaching(prefixCaching).build()) {
            LLMEngine engine = llm.engine();
            engine.addRequest("n4", prompt, sampling.n(4).build());
            int peakBlocks = 0;
            RequestOutput result = null;
            while (engine.hasUnfinishedRequests()) {
                for (RequestOutput out : engine.step()) result = out;
                peakBlocks = Math.max(peakBlocks, llm.metrics().kvBlocksUsed());
            }
            // The first sequence computes the prompt; the others start on its 3 full blocks before the
            // block holding the last prompt token, so 4 × 72 tokens fit in 5 + 3 × 2 blocks, not 4 × 5.
            assertEquals(64 + 3 * 16, llm.metrics().promptTokensComputed());
            assertEquals(11, peakBlocks);
            engine.checkNoLeaks();
            for (int i = 0; i < 4; i++) {
                SamplingParams single = sampling.n(1).seed(7 + i).build();
                assertEquals(llm.generate(prompt, single).outputs().getFirst().tokenIds(),
                        result.outputs().get(i).tokenIds(), "sequence " + i);
            }
        }
    }
}
