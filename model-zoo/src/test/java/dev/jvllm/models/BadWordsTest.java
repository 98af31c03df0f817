package dev.jvllm.models;

import dev.jvllm.InvalidRequestException;
import dev.jvllm.SamplingParams;
import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * vLLM's {@code bad_words} on the demo model: a word the greedy answer writes is not written once
 * banned, the answer is the same up to where it was, and a word is banned both after a space and
 * at the start of the answer.
 */
class BadWordsTest extends OnTheDemoModel {

    private static final String PROMPT = "The European Parliament";

    private int[] greedy(List<String> badWords) {
        return llm.generate(PROMPT, SamplingParams.builder().temperature(0).ignoreEos(true).maxTokens(40).badWords(badWords).build())
                .outputs().getFirst().tokenIdArray();
    }

    private static int indexOf(int[] haystack, int[] needle) {
        for (int i = 0; i + needle.length <= haystack.length; i++) {
            if (Arrays.equals(haystack, i, i + needle.length, needle, 0, needle.length)) return i;
        }
        return -1;
    }

    @Test
    void aBannedWordIsNotWrittenAndTheAnswerIsTheSameUpToWhereItWas() {
        int[] free = greedy(List.of());
        String text = llm.tokenizer().decode(free, true);
        // A word of the answer made of two or more tokens after its space, so that the last one is masked in context.
        String word = null;
        int[] spaced = null;
        for (String candidate : text.trim().split("\\s+")) {
            int[] ids = llm.tokenizer().encode(" " + candidate, false);
            if (ids.length >= 2 && indexOf(free, ids) >= 0) {
                word = candidate;
                spaced = ids;
                break;
            }
        }
        assertTrue(word != null, "no word of two tokens in: " + text);
        int at = indexOf(free, spaced);

        int[] banned = greedy(List.of(word));
        assertEquals(-1, indexOf(banned, spaced), "'" + word + "' written: " + llm.tokenizer().decode(banned, true));
        assertArrayEquals(Arrays.copyOf(free, at + spaced.length - 1), Arrays.copyOf(banned, at + spaced.length - 1),
                "the same answer up to the banned word's last token");
        assertFalse(Arrays.equals(free, banned));
    }

    /** Bad words that mask every token a structured output allows fail the request, rather than end it empty as if complete. */
    @Test
    void aRowWithEveryTokenMaskedFailsItsRequest() {
        var params = SamplingParams.builder().temperature(0).maxTokens(10).badWords(List.of("a"))
                .structuredOutputs(dev.jvllm.StructuredOutputs.choice(List.of("a"))).build();
        var failure = assertThrows(dev.jvllm.RequestFailedException.class, () -> llm.generate("The capital of France is", params));
        assertTrue(failure.getMessage().endsWith("every token was masked at output token 0 (by allowed token ids, the structured output, "
                + "bad words or a logits processor, together)"), failure.getMessage());
    }

    @Test
    void aWordIsBannedAtTheStartOfTheAnswerToo() {
        int[] free = greedy(List.of());
        // The first token alone, as a word: masked at the first step whichever way the word is written.
        String first = llm.tokenizer().decode(new int[]{free[0]}, true);
        int[] banned = greedy(List.of(first));
        assertTrue(banned[0] != free[0], "the first token was banned");
        assertThrows(InvalidRequestException.class, () -> SamplingParams.builder().badWords(List.of(" ")).build());
    }
}
