package dev.jvllm.server;

import dev.jvllm.TagSearch;

import java.util.Locale;

/**
 * Separates a thinking model's reasoning from its answer, as vLLM's {@code --reasoning-parser}: the
 * chat answer's {@code reasoning_content} and {@code content}.
 * <ul>
 *   <li>{@code deepseek_r1} (DeepSeek-R1 and its distillations, whose chat template opens the
 *       thinking): everything up to {@code </think>} is reasoning (a leading {@code <think>} dropped);
 *       an answer that never closes it is all reasoning;</li>
 *   <li>{@code qwen3}: the text between {@code <think>} and {@code </think>} (or the answer's end,
 *       where the thinking ran out of tokens) is reasoning, the text outside the tags the content; an
 *       answer without {@code <think>} (thinking switched off) is all content. Streamed and whole
 *       answers split alike.</li>
 * </ul>
 */
enum ReasoningParser {
    DEEPSEEK_R1 {
        @Override
        Split split(String text) {
            String body = withoutOpening(text);
            int end = body.indexOf(CLOSE);
            return end < 0 ? new Split(body, "") : new Split(body.substring(0, end), body.substring(end + CLOSE.length()));
        }

        @Override
        Spans streamed(CharSequence text, Searches searches) {
            int lead = searches.firstNonSpace(text);
            if (isStartOf(OPEN, text, lead)) return new Spans(0, 0, 0, 0, 0);
            int body = TagSearch.startsWith(text, lead, OPEN) ? lead + OPEN.length() : 0;
            int end = searches.close.first(text, body);
            if (end >= 0) return new Spans(body, end, 0, end + CLOSE.length(), text.length());
            return new Spans(body, TagSearch.beforePartial(text, body, CLOSE), 0, 0, 0);
        }
    },
    QWEN3 {
        @Override
        Split split(String text) {
            int start = text.indexOf(OPEN);
            if (start < 0) return new Split(null, text);
            String before = text.substring(0, start), body = text.substring(start + OPEN.length());
            int end = body.indexOf(CLOSE);
            if (end < 0) return new Split(body, before);
            return new Split(body.substring(0, end), before + body.substring(end + CLOSE.length()));
        }

        @Override
        Spans streamed(CharSequence text, Searches searches) {
            int start = searches.open.first(text, 0);
            if (start < 0) return new Spans(-1, -1, TagSearch.beforePartial(text, 0, OPEN), 0, 0);
            int body = start + OPEN.length();
            int end = searches.close.first(text, body);
            if (end >= 0) return new Spans(body, end, start, end + CLOSE.length(), text.length());
            return new Spans(body, TagSearch.beforePartial(text, body, CLOSE), start, 0, 0);
        }
    };

    private static final String OPEN = "<think>", CLOSE = "</think>";

    /** The reasoning (null: the answer has none) and the content. */
    record Split(String reasoning, String content) {
    }

    /**
     * What of a streamed answer is certain, as places in its text: the reasoning
     * {@code [reasoningStart, reasoningEnd)} (none where reasoningStart is -1), and the content
     * {@code [0, beforeEnd)} followed by {@code [afterStart, afterEnd)}.
     */
    record Spans(int reasoningStart, int reasoningEnd, int beforeEnd, int afterStart, int afterEnd) {
        int contentLength() {
            return beforeEnd + afterEnd - afterStart;
        }

        /** The content's characters {@code [from, to)}. */
        String content(CharSequence text, int from, int to) {
            StringBuilder piece = new StringBuilder(to - from);
            for (int i = from; i < to; i++) piece.append(contentAt(text, i));
            return piece.toString();
        }

        char contentAt(CharSequence text, int i) {
            return text.charAt(i < beforeEnd ? i : afterStart + i - beforeEnd);
        }

        /** The content as a view of the text (not copied). */
        CharSequence content(CharSequence text) {
            return new CharSequence() {
                @Override
                public int length() {
                    return contentLength();
                }

                @Override
                public char charAt(int index) {
                    return contentAt(text, index);
                }

                @Override
                public CharSequence subSequence(int start, int end) {
                    return content(text, start, end);
                }

                @Override
                public String toString() {
                    return content(text, 0, length());
                }
            };
        }
    }

    /** The tag searches of one streamed answer, each stretch of it searched once. */
    static final class Searches {
        private final TagSearch open = new TagSearch(OPEN), close = new TagSearch(CLOSE);
        /** The text below this is whitespace. */
        private int lead;

        private int firstNonSpace(CharSequence text) {
            while (lead < text.length() && Character.isWhitespace(text.charAt(lead))) lead++;
            return lead;
        }
    }

    /** The whole answer's reasoning and content. */
    abstract Split split(String text);

    /**
     * What of an answer still being streamed is certain: reasoning and content that later text cannot
     * change, a tag's first characters held back until the tag is whole. Each span's text is a prefix
     * of the next call's, as the answer grows; each call must pass the same answer, grown, and its searches.
     */
    abstract Spans streamed(CharSequence text, Searches searches);

    /** The parser of a vLLM {@code --reasoning-parser} name. */
    static ReasoningParser named(String name) {
        return switch (name.toLowerCase(Locale.ROOT)) {
            case "deepseek_r1" -> DEEPSEEK_R1;
            case "qwen3" -> QWEN3;
            default -> throw new IllegalArgumentException("unknown reasoning parser '" + name + "' (deepseek_r1, qwen3)");
        };
    }

    /** The text after a leading {@code <think>} (and the whitespace before it), or the text. */
    private static String withoutOpening(String text) {
        String stripped = text.stripLeading();
        return stripped.startsWith(OPEN) ? stripped.substring(OPEN.length()) : text;
    }

    /** Whether {@code text} from {@code from} on is the start of {@code tag} (all of it, or none of it yet). */
    private static boolean isStartOf(String tag, CharSequence text, int from) {
        int length = text.length() - from;
        return length <= tag.length() && TagSearch.startsWith(tag, 0, text.subSequence(from, text.length()).toString());
    }
}
