package dev.jvllm.engine;

import dev.jvllm.LLM;
import dev.jvllm.Prompt;
import dev.jvllm.SamplingParams;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.stream.IntStream;

import static dev.jvllm.engine.TinyLlamas.aloneOutputs;
import static dev.jvllm.engine.TinyLlamas.builder;
import static dev.jvllm.engine.TinyLlamas.greedy;
import static dev.jvllm.engine.TinyLlamas.randomPrompts;
import static org.junit.jupiter.api.Assertions.assertEquals;

/** A prompt whose prefix is cached computes only the rest, and its output is what it would be uncached. */
class PrefixCachingTest {

    private static final SamplingParams GREEDY = greedy(20);

    @Test
    void secondRequestSharingALongPrefixComputesOnlyItsOwnTokens() {
        int[] prefix = randomPrompts(10, 64).getFirst();
        int[] first = concat(prefix, randomPrompts(11, 9).getFirst());
        int[] second = concat(prefix, randomPrompts(12, 13).getFirst());
        List<List<Integer>> uncached = aloneOutputs("llama-plain", 128, List.of(first, second), GREEDY);
        try (LLM llm = builder("llama-plain", 128).build()) {
            assertEquals(uncached.get(0), llm.generate(first, GREEDY).outputs().getFirst().tokenIds());
            EngineMetrics before = llm.metrics();
            assertEquals(uncached.get(1), llm.generate(second, GREEDY).outputs().getFirst().tokenIds());
            EngineMetrics after = llm.metrics();
            assertEquals(64, after.prefixCacheHits() - before.prefixCacheHits(), "cached prompt tokens");
            assertEquals(second.length - 64, after.promptTokensComputed() - before.promptTokensComputed(),
                    "prompt tokens computed");
            llm.engine().checkNoLeaks();
        }
    }

    @Test
    void repeatedPromptRecomputesOnlyItsLastToken() {
        int[] prompt = randomPrompts(13, 48).getFirst();
        try (LLM llm = builder("llama-gqa", 128).build()) {
            List<Integer> once = llm.generate(prompt, GREEDY).outputs().getFirst().tokenIds();
            EngineMetrics before = llm.metrics();
            assertEquals(once, llm.generate(prompt, GREEDY).outputs().getFirst().tokenIds());
            // The block holding the last prompt token is computed again: its logits pick the first output token.
            assertEquals(32, llm.metrics().prefixCacheHits() - before.prefixCacheHits(), "cached prompt tokens");
            assertEquals(16, llm.metrics().promptTokensComputed() - before.promptTokensComputed(), "prompt tokens computed");
        }
    }

    /**
     * A prompt of 3.5 blocks salted "a", then "b", then "a" again: "b" finds none of "a"'s blocks
     * (another tenant can neither reuse nor time them), "a" again finds its 3 full blocks, and
     * neither an unsalted request nor a salted one shares with the other. Outputs never change.
     */
    @Test
    void requestsSaltedDifferentlyNeverShareCachedBlocks() {
        int[] prompt = randomPrompts(15, 56).getFirst();
        List<Integer> uncached = aloneOutputs("llama-gqa", 128, List.of(prompt), GREEDY).getFirst();
        try (LLM llm = builder("llama-gqa", 128).build()) {
            assertEquals(uncached, salted(llm, prompt, "a"));
            assertEquals(0, llm.metrics().prefixCacheHits(), "nothing cached yet");
            assertEquals(uncached, salted(llm, prompt, "b"));
            assertEquals(0, llm.metrics().prefixCacheHits(), "salt b finds none of salt a's blocks");
            assertEquals(uncached, salted(llm, prompt, "a"));
            assertEquals(48, llm.metrics().prefixCacheHits(), "salt a again finds its 3 full blocks");
            assertEquals(uncached, salted(llm, prompt, null));
            assertEquals(48, llm.metrics().prefixCacheHits(), "an unsalted request finds no salted blocks");
            assertEquals(uncached, salted(llm, prompt, "b"));
            assertEquals(96, llm.metrics().prefixCacheHits(), "salt b again finds its own");
            llm.engine().checkNoLeaks();
        }
    }

    private static List<Integer> salted(LLM llm, int[] prompt, String salt) {
        Prompt salted = Prompt.tokens(prompt).withCacheSalt(salt);
        return llm.generatePrompts(List.of(salted), GREEDY).getFirst().outputs().getFirst().tokenIds();
    }

    @Test
    void prefixCachingOffComputesEveryPromptToken() {
        int[] prompt = randomPrompts(14, 40).getFirst();
        try (LLM llm = builder("llama-gqa", 128).enablePrefixCaching(false).build()) {
            llm.generate(prompt, GREEDY);
            llm.generate(prompt, GREEDY);
            assertEquals(2L * prompt.length, llm.metrics().promptTokensComputed());
            assertEquals(0, llm.metrics().prefixCacheHits());
        }
    }

    private static int[] concat(int[] a, int[] b) {
        return IntStream.concat(IntStream.of(a), IntStream.of(b)).toArray();
    }
}
