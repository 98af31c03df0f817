package dev.jvllm;

/**
 * Where a tag first occurs in a text that only grows by appending, such as a streamed answer: each
 * stretch of the text is searched once, where searching the whole text again for each new piece
 * would make a long stream cost time in the square of its length. One per text and tag; not
 * thread-safe.
 */
public final class TagSearch {
    private final String tag;
    /** The tag starts at no index below this in the text seen so far (from the search's start on). */
    private int searchedTo;
    private int found = -1;

    /** A search for {@code tag} (not empty). */
    public TagSearch(String tag) {
        if (tag.isEmpty()) throw new IllegalArgumentException("an empty tag");
        this.tag = tag;
    }

    /**
     * Where the tag first starts in {@code text} at or after {@code start}, or -1 where it does not
     * (yet). Each call must pass the same text, grown, and the same start.
     */
    public int first(CharSequence text, int start) {
        if (found >= 0) return found;
        int i = Math.max(searchedTo, start);
        int last = text.length() - tag.length();
        for (; i <= last; i++) {
            if (startsWith(text, i, tag)) return found = i;
        }
        searchedTo = Math.max(i, start);
        return -1;
    }

    /** Whether {@code text} holds {@code tag} at {@code at}. */
    public static boolean startsWith(CharSequence text, int at, String tag) {
        if (at < 0 || at + tag.length() > text.length()) return false;
        for (int j = 0; j < tag.length(); j++) {
            if (text.charAt(at + j) != tag.charAt(j)) return false;
        }
        return true;
    }

    /**
     * Where a trailing start of {@code tag} (its first characters, not all of it) begins in
     * {@code text} at or after {@code from}; the text's length where none does. Text before it is
     * certain not to be part of the tag.
     */
    public static int beforePartial(CharSequence text, int from, String tag) {
        int length = text.length();
        for (int k = Math.min(tag.length() - 1, length - from); k > 0; k--) {
            int j = 0;
            while (j < k && text.charAt(length - k + j) == tag.charAt(j)) j++;
            if (j == k) return length - k;
        }
        return length;
    }
}
