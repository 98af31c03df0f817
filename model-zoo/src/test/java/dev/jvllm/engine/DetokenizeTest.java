package dev.jvllm.engine;

import dev.jvllm.CompletionOutput;
import dev.jvllm.LLM;
import dev.jvllm.Logprob;
import dev.jvllm.SamplingParams;
import org.junit.jupiter.api.Test;

import java.nio.file.Path;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@code detokenize(false)}, as in vLLM: the same tokens, no text and no decoded logprob tokens, so
 * a caller working in token ids never waits for the tokenizer.
 */
class DetokenizeTest {

    private static final Path DEMO = DemoModel.path();

    @Test
    void withoutDetokenizingTheTokensAreTheSameAndTheTextIsEmpty() {
        SamplingParams.Builder greedy = SamplingParams.builder().temperature(0).maxTokens(12).ignoreEos(true).logprobs(2);
        try (LLM llm = LLM.builder().model(DEMO.toString()).device("cpu").threads(1).build()) {
            CompletionOutput text = llm.generate("Once upon a time", greedy.build()).outputs().getFirst();
            CompletionOutput ids = llm.generate("Once upon a time", greedy.detokenize(false).build()).outputs().getFirst();
            assertEquals(text.tokenIds(), ids.tokenIds());
            assertFalse(text.text().isEmpty(), "detokenized by default");
            assertEquals("", ids.text());
            for (Map<Integer, Logprob> position : ids.logprobs()) {
                position.values().forEach(l -> assertNull(l.decodedToken()));
            }
            for (Map<Integer, Logprob> position : text.logprobs()) {
                position.values().forEach(l -> assertNotNull(l.decodedToken()));
            }
            assertTrue(Math.abs(text.cumulativeLogprob() - ids.cumulativeLogprob()) < 1e-4);
        }
    }
}
