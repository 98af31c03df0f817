package dev.jvllm.models;

import dev.jvllm.LogitsProcessor;
import dev.jvllm.Prompt;
import dev.jvllm.RequestFailedException;
import dev.jvllm.RequestOutput;
import dev.jvllm.SamplingParams;
import dev.jvllm.engine.LLMEngine;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A request's own logits processors on the demo model: they change what is drawn, see the tokens
 * drawn so far, and one that throws fails its own request while the batch's others run on.
 */
class LogitsProcessorTest extends OnTheDemoModel {

    private static final String PROMPT = "The European Parliament";
    private static SamplingParams.Builder sampled() {
        return SamplingParams.builder().temperature(1.0).seed(9L).ignoreEos(true).maxTokens(12);
    }

    @Test
    void aProcessorDecidesWhatIsDrawnAndSeesWhatWasDrawn() {
        int forced = llm.tokenizer().encode(" Europe", false)[0];
        LogitsProcessor onlyForced = (tokens, logits) -> {
            float kept = logits[forced];
            Arrays.fill(logits, Float.NEGATIVE_INFINITY);
            logits[forced] = kept;
        };
        int[] out = llm.generate(PROMPT, sampled().logitsProcessors(List.of(onlyForced)).build()).outputs().getFirst().tokenIdArray();
        int[] expected = new int[12];
        Arrays.fill(expected, forced);
        assertArrayEquals(expected, out);

        List<List<Integer>> seen = new ArrayList<>();
        LogitsProcessor recorder = (tokens, logits) -> seen.add(List.copyOf(tokens));
        int[] drawn = llm.generate(PROMPT, sampled().logitsProcessors(List.of(recorder)).build()).outputs().getFirst().tokenIdArray();
        assertEquals(12, seen.size());
        for (int k = 0; k < seen.size(); k++) {
            assertEquals(Arrays.stream(drawn, 0, k).boxed().toList(), seen.get(k), "the tokens before draw " + k);
        }
        // A processor that changes nothing leaves the seeded draw as it is.
        assertArrayEquals(llm.generate(PROMPT, sampled().build()).outputs().getFirst().tokenIdArray(), drawn);
    }

    @Test
    void aProcessorThatThrowsFailsItsRequestAndTheBatchRunsOn() {
        SamplingParams plain = SamplingParams.builder().temperature(0).ignoreEos(true).maxTokens(16).build();
        int[] alone = llm.generate(PROMPT, plain).outputs().getFirst().tokenIdArray();
        LogitsProcessor failing = (tokens, logits) -> {
            if (tokens.size() == 3) throw new IllegalStateException("boom");
        };
        LLMEngine engine = llm.engine();
        engine.addRequest("plain", Prompt.text(PROMPT), plain, null);
        engine.addRequest("failing", Prompt.text("The Commission"), sampled().logitsProcessors(List.of(failing)).build(), null);
        EngineDrain drained = EngineDrain.of(engine);
        Map<String, RequestOutput> finished = drained.finished();
        assertArrayEquals(alone, finished.get("plain").outputs().getFirst().tokenIdArray());
        assertEquals(Set.of("failing"), drained.failures().keySet());
        RequestFailedException failure = drained.failures().get("failing");
        assertEquals("request failing: its logits processor threw java.lang.IllegalStateException: boom", failure.getMessage());
        assertEquals(3, finished.get("failing").outputs().getFirst().tokenIdArray().length, "drawn before it threw");
        assertTrue(engine.metrics().running() == 0);
    }

    /** An Error (not an exception) thrown by a processor, or NaN written by one, fails its request; the LLM serves on. */
    @Test
    void aProcessorThatThrowsAnErrorOrWritesNaNFailsOnlyItsRequest() {
        LogitsProcessor asserting = (tokens, logits) -> {
            if (tokens.size() == 2) throw new AssertionError("boom");
        };
        var thrown = org.junit.jupiter.api.Assertions.assertThrows(RequestFailedException.class,
                () -> llm.generate(PROMPT, sampled().logitsProcessors(List.of(asserting)).build()));
        assertTrue(thrown.getMessage().endsWith("its logits processor threw java.lang.AssertionError: boom"), thrown.getMessage());
        LogitsProcessor nan = (tokens, logits) -> Arrays.fill(logits, Float.NaN);
        var wroteNaN = org.junit.jupiter.api.Assertions.assertThrows(RequestFailedException.class,
                () -> llm.generate(PROMPT, sampled().logitsProcessors(List.of(nan)).build()));
        assertTrue(wroteNaN.getMessage().endsWith("its logits processor wrote NaN as the logit of token 0"), wroteNaN.getMessage());
        assertEquals(0, llm.engine().metrics().running());
        assertEquals(12, llm.generate(PROMPT, sampled().build()).outputs().getFirst().tokenIdArray().length, "the LLM serves on");
    }
}
