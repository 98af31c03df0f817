package dev.jvllm.sampling;

/**
 * Every token of a row was masked (allowed token ids, a structured output, bad words, a logits
 * processor): nothing can be drawn, and ending the sequence as if complete would hide it. Its
 * request fails; the batch goes on.
 */
public final class NothingToDrawException extends RuntimeException {

    NothingToDrawException(int outputLength) {
        super("every token was masked at output token " + outputLength
                + " (by allowed token ids, the structured output, bad words or a logits processor, together)");
    }
}
