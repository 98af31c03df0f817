package dev.jvllm.tokenizer;

import java.util.Arrays;

/**
 * Turns a stream of generated token ids into text deltas, one {@link #accept(int)} per token.
 *
 * <p>A token's text can depend on its neighbours: a character's UTF-8 bytes may be split over
 * several byte-level tokens, and SentencePiece decoders drop the leading space of the first token
 * of a text. So, as in vLLM, each step decodes a short window of already-emitted tokens (the
 * prefix) with and without the new tokens and emits the difference; while the result ends in
 * U+FFFD (an incomplete UTF-8 sequence), it emits nothing and waits for the next token.
 *
 * <p>Guarantee: for generated ids {@code g} (and no prompt), the concatenation of all deltas and
 * {@link #flush()} equals {@code tokenizer.decode(g, skipSpecialTokens)}. With a prompt {@code p},
 * it equals the text that {@code decode(p + g)} has after {@code decode(p)}.
 *
 * <p>Not thread-safe: one instance per sequence.
 */
public final class IncrementalDetokenizer {

    /** Tokens of the prompt kept as context, as vLLM's INITIAL_INCREMENTAL_DETOKENIZATION_OFFSET. */
    private static final int PROMPT_CONTEXT_TOKENS = 5;

    private static final char REPLACEMENT_CHARACTER = '\uFFFD';

    private final HfTokenizer tokenizer;
    private final boolean skipSpecialTokens;
    private int[] ids;
    private int length;
    /** Start of the window decoded for context; its text was already emitted (or is prompt). */
    private int prefixOffset;
    /** End of what was emitted; tokens from here on have not produced text yet. */
    private int readOffset;

    /**
     * A detokenizer for a sequence without prompt context: the first generated token starts the
     * text.
     */
    public IncrementalDetokenizer(HfTokenizer tokenizer, boolean skipSpecialTokens) {
        this(tokenizer, new int[0], skipSpecialTokens);
    }

    /**
     * A detokenizer for text generated after {@code promptIds}: the last few prompt tokens are the
     * decoding context of the first generated token (so "▁world" after a prompt yields " world").
     */
    public IncrementalDetokenizer(HfTokenizer tokenizer, int[] promptIds, boolean skipSpecialTokens) {
        this.tokenizer = tokenizer;
        this.skipSpecialTokens = skipSpecialTokens;
        this.ids = Arrays.copyOf(promptIds, Math.max(16, promptIds.length * 2));
        this.length = promptIds.length;
        this.readOffset = promptIds.length;
        this.prefixOffset = Math.max(0, promptIds.length - PROMPT_CONTEXT_TOKENS);
    }

    /**
     * Adds one generated token and returns the text it completes: possibly empty (an incomplete
     * character, or a skipped special token), possibly more than the token's own text (when it
     * completes a character begun by earlier tokens).
     */
    public String accept(int tokenId) {
        if (length == ids.length) {
            ids = Arrays.copyOf(ids, ids.length * 2);
        }
        ids[length++] = tokenId;
        return emit(false);
    }

    /**
     * Returns the text still held back at the end of the stream (bytes of an unfinished
     * character, decoded as U+FFFD, as {@link HfTokenizer#decode} would show them).
     */
    public String flush() {
        return emit(true);
    }

    /** All token ids seen so far, prompt included. */
    public int[] tokenIds() {
        return Arrays.copyOf(ids, length);
    }

    private String emit(boolean force) {
        if (readOffset == length) {
            return "";
        }
        String prefixText = tokenizer.decode(Arrays.copyOfRange(ids, prefixOffset, readOffset), skipSpecialTokens);
        String newText = tokenizer.decode(Arrays.copyOfRange(ids, prefixOffset, length), skipSpecialTokens);
        boolean incomplete = !newText.isEmpty() && newText.charAt(newText.length() - 1) == REPLACEMENT_CHARACTER;
        if (newText.length() <= prefixText.length() || (incomplete && !force)) {
            // Nothing new yet (a skipped special token) or a character still missing bytes: keep
            // the tokens unread so the next step decodes them together with what follows.
            return "";
        }
        prefixOffset = readOffset;
        readOffset = length;
        return delta(prefixText, newText);
    }

    private static String delta(String prefixText, String newText) {
        int start = prefixText.length();
        if (!newText.startsWith(prefixText)) {
            // The window's text changed before the end (rare: a decoder that rewrites earlier
            // characters); emit from the first difference on the same position as vLLM would.
            start = Math.min(start, newText.length());
        }
        if (start > 0 && start < newText.length() && Character.isLowSurrogate(newText.charAt(start))) {
            start--; // never split a surrogate pair
        }
        return newText.substring(start);
    }
}
