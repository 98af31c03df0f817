package dev.jvllm.engine;

import dev.jvllm.SpeculativeConfig;

/**
 * Guesses a sequence's next tokens by prompt lookup (vLLM's {@code ngram} method): finds the latest
 * earlier place where its last n tokens occurred, for the largest n from {@code promptLookupMax}
 * down to {@code promptLookupMin} that occurs, and guesses the tokens that followed there.
 *
 * <p>One backward scan over the sequence: at each earlier occurrence of the last token it measures
 * how far the match reaches back (at most {@code promptLookupMax}), keeping the longest and, among
 * equals, the latest. A step costs the sequence's length plus the match lengths measured. The
 * guess is always {@code limit} tokens long where anything matches (see {@link #propose}).
 */
final class NgramProposer {

    private static final int[] NONE = new int[0];

    private final int min;
    private final int max;

    NgramProposer(SpeculativeConfig config) {
        this.min = config.promptLookupMin();
        this.max = config.promptLookupMax();
    }

    /** At most {@code limit} guessed tokens to follow {@code tokens[0, length)}; none where nothing matches. */
    int[] propose(TokenSource tokens, int length, int limit) {
        if (limit <= 0 || length < min + 1) return NONE;
        int last = tokens.token(length - 1);
        int bestEnd = -1, bestLength = 0;
        // end: the index just after an earlier occurrence's last token; the current suffix ends at length.
        for (int end = length - 1; end >= min; end--) {
            if (tokens.token(end - 1) != last) continue;
            int matched = 1;
            while (matched < max && end - matched - 1 >= 0 && tokens.token(end - matched - 1) == tokens.token(length - matched - 1)) {
                matched++;
            }
            if (matched >= min && matched > bestLength) {
                bestLength = matched;
                bestEnd = end;
                if (matched == max) break;
            }
        }
        if (bestEnd < 0) return NONE;
        // Copied as LZ77 copies with overlap: where the continuation reaches the sequence's end, the guess
        // goes on repeating the period (length - bestEnd) the match shows, so a run of one token or of a
        // short list guesses its whole next repeat rather than stopping at the end.
        int[] guess = new int[limit];
        int period = length - bestEnd;
        for (int i = 0; i < limit; i++) guess[i] = i < period ? tokens.token(bestEnd + i) : guess[i - period];
        return guess;
    }

    /** Read access to a sequence's token ids. */
    @FunctionalInterface
    interface TokenSource {
        int token(int index);
    }
}
