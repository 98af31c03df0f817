package dev.jvllm;

/**
 * Speculative decoding, as vLLM's {@code speculative_config}: each decode step of a request also
 * runs up to {@code numSpeculativeTokens} guessed tokens through the model, and keeps those the
 * model would have produced itself. A step then yields from one to {@code numSpeculativeTokens + 1}
 * tokens for about the cost of one where decoding is bound by reading the weights.
 *
 * <p>The one method is {@code "ngram"} (prompt lookup): the guess is what followed the latest
 * earlier occurrence of the sequence's last {@code promptLookupMax} to {@code promptLookupMin}
 * tokens (longest first) in its prompt and output. It pays where outputs repeat their context
 * (summaries, edits of code, extraction, quoting) and costs little where they do not.
 *
 * <p>Outputs keep their distribution: every step's tokens are drawn from the model's own logits
 * with each request's sampling parameters, one position after another, and a guess counts only
 * where the draw equals it (for a guess of probability one this is speculative sampling's
 * acceptance rule). Greedy outputs are the tokens greedy decoding gives, up to the rounding of a
 * several-token forward pass against a one-token one; seeded sampled outputs follow the same
 * distribution but not the same draws as without speculation.
 *
 * @param method               "ngram"
 * @param numSpeculativeTokens the most guessed tokens a step verifies per request (1 to {@value #MAX_SPECULATIVE_TOKENS})
 * @param promptLookupMin      the shortest run of last tokens matched (at least 1)
 * @param promptLookupMax      the longest run of last tokens matched (at least promptLookupMin)
 */
public record SpeculativeConfig(String method, int numSpeculativeTokens, int promptLookupMin, int promptLookupMax) {

    /** The most guessed tokens a step may verify per request. */
    public static final int MAX_SPECULATIVE_TOKENS = 64;

    /** vLLM's lookup window when neither end is given. */
    public static final int DEFAULT_PROMPT_LOOKUP = 5;

    public SpeculativeConfig {
        if (!"ngram".equals(method)) {
            throw new IllegalArgumentException("speculative method '" + method + "' is not supported: only \"ngram\" "
                    + "(prompt lookup) is; draft models, EAGLE and Medusa are not");
        }
        if (numSpeculativeTokens < 1 || numSpeculativeTokens > MAX_SPECULATIVE_TOKENS) {
            throw new IllegalArgumentException("speculative option numSpeculativeTokens must be from 1 to "
                    + MAX_SPECULATIVE_TOKENS + ", not " + numSpeculativeTokens);
        }
        if (promptLookupMin < 1) {
            throw new IllegalArgumentException("speculative option promptLookupMin must be at least 1, not " + promptLookupMin);
        }
        if (promptLookupMax < promptLookupMin) {
            throw new IllegalArgumentException("speculative option promptLookupMax (" + promptLookupMax
                    + ") must not be below promptLookupMin (" + promptLookupMin + ")");
        }
    }

    /** Prompt lookup of {@code numSpeculativeTokens} tokens after a match of the last 5 tokens (vLLM's default). */
    public static SpeculativeConfig ngram(int numSpeculativeTokens) {
        return ngram(numSpeculativeTokens, DEFAULT_PROMPT_LOOKUP, DEFAULT_PROMPT_LOOKUP);
    }

    /** Prompt lookup of {@code numSpeculativeTokens} tokens after a match of the last promptLookupMax to promptLookupMin tokens. */
    public static SpeculativeConfig ngram(int numSpeculativeTokens, int promptLookupMin, int promptLookupMax) {
        return new SpeculativeConfig("ngram", numSpeculativeTokens, promptLookupMin, promptLookupMax);
    }

    /**
     * vLLM's form, where either end of the lookup may be left out (null): both out take 5, one out
     * takes the other's value.
     */
    public static SpeculativeConfig of(String method, int numSpeculativeTokens, Integer promptLookupMin,
                                       Integer promptLookupMax) {
        int min = promptLookupMin != null ? promptLookupMin : promptLookupMax != null ? promptLookupMax : DEFAULT_PROMPT_LOOKUP;
        int max = promptLookupMax != null ? promptLookupMax : min;
        return new SpeculativeConfig(method, numSpeculativeTokens, min, max);
    }
}
