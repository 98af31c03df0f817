package dev.jvllm.engine;

import java.util.List;
import java.util.function.IntFunction;

/**
 * The text of one output sequence, grown token by token through an incremental detokenizer, and
 * the stop-string check over it: a stop string ends the sequence and is cut from the text (kept
 * when {@code includeStop}).
 */
final class TextAccumulator {

    private final IntFunction<String> detokenizer;
    private final List<String> stops;
    private final boolean includeStop;
    private final int longestStop;
    private final StringBuilder text = new StringBuilder();
    /**
     * The last {@link #text} returned. The text only grows or is cut short, so its first n
     * characters never change: a call wanting as many as last time returns the same string.
     */
    private String shown = "";

    /** @param detokenizer the text a new token adds, or null when the engine has no tokenizer */
    TextAccumulator(IntFunction<String> detokenizer, List<String> stops, boolean includeStop) {
        this.detokenizer = detokenizer;
        this.stops = stops;
        this.includeStop = includeStop;
        this.longestStop = stops.stream().mapToInt(String::length).max().orElse(0);
    }

    /**
     * Adds a token's text; returns the stop string it completed, or null. With {@code stopsApply} false
     * (min_tokens not reached) no stop string is looked for, so none cuts the text, which then only grows.
     */
    String append(int token, boolean stopsApply) {
        if (detokenizer == null) return null;
        int before = text.length();
        text.append(detokenizer.apply(token));
        if (!stopsApply || stops.isEmpty() || text.length() == before) return null;
        int bestAt = -1;
        String best = null;
        for (String stop : stops) {
            // Only a match that ends in the new text: older text was searched before, or (before min_tokens) must not be.
            int at = text.indexOf(stop, Math.max(0, before - stop.length() + 1));
            if (at >= 0 && (bestAt < 0 || at < bestAt)) {
                bestAt = at;
                best = stop;
            }
        }
        if (best != null) text.setLength(includeStop ? bestAt + best.length() : bestAt);
        return best;
    }

    /**
     * The text so far. While the sequence runs, its last (longest stop string − 1) characters are
     * held back, since a stop string completed by a later token would take them back; so the text
     * of successive outputs only ever grows and streamed deltas concatenate to the final text.
     */
    String text(boolean finished) {
        int visible = visibleLength(finished);
        if (visible != shown.length()) shown = text.substring(0, visible);
        return shown;
    }

    /** The length of {@link #text}, without making it. */
    int visibleLength(boolean finished) {
        int visible = finished ? text.length() : Math.max(0, text.length() - Math.max(0, longestStop - 1));
        if (visible > 0 && visible < text.length() && Character.isHighSurrogate(text.charAt(visible - 1))) visible--;
        return visible;
    }

    /** Characters {@code from} to {@code to} of the text, within its {@link #visibleLength}. */
    String slice(int from, int to) {
        return text.substring(from, to);
    }
}
