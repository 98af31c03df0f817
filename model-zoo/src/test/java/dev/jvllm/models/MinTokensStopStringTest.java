package dev.jvllm.models;

import dev.jvllm.CompletionOutput;
import dev.jvllm.SamplingParams;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Stop strings and min_tokens, as vLLM: a stop string ends the answer only in text that comes after
 * the first min_tokens tokens, so the text of token number min_tokens itself cannot end it.
 */
class MinTokensStopStringTest extends OnTheDemoModel {

    @Test
    void theTextOfTokenNumberMinTokensDoesNotEndTheAnswer() {
        String prompt = "Article 1, Article 2, Article 3, Article 4, Article 5, Article";
        CompletionOutput free = llm.generate(prompt, SamplingParams.builder().temperature(0).ignoreEos(true).maxTokens(12).build())
                .outputs().getFirst();
        int minTokens = 3;
        String piece = llm.tokenizer().decode(new int[]{free.tokenIds().get(minTokens - 1)}, true);
        assertTrue(!piece.isBlank() && !free.text().startsWith(piece) , "a stop string first met at token " + minTokens + ": '" + piece + "'");
        SamplingParams params = SamplingParams.builder().temperature(0).ignoreEos(true).maxTokens(12).minTokens(minTokens)
                .stop(List.of(piece)).build();
        CompletionOutput answer = llm.generate(prompt, params).outputs().getFirst();
        assertTrue(answer.tokenIds().size() > minTokens, "ended at token " + answer.tokenIds().size() + ": " + answer.text());
        assertEquals(free.tokenIds().subList(0, answer.tokenIds().size()), answer.tokenIds());
    }
}
