package dev.jvllm.server;

import dev.jvllm.ToolCallParser;

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
        Split streamed(String text) {
            String body = withoutOpening(text);
            if (body.isEmpty() || OPEN.startsWith(text.stripLeading())) return new Split("", "");
            int end = body.indexOf(CLOSE);
            if (end >= 0) return new Split(body.substring(0, end), body.substring(end + CLOSE.length()));
            return new Split(body.substring(0, ToolCallParser.beforePartial(body, CLOSE)), "");
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
        Split streamed(String text) {
            int start = text.indexOf(OPEN);
            if (start < 0) return new Split(null, text.substring(0, ToolCallParser.beforePartial(text, OPEN)));
            String before = text.substring(0, start), body = text.substring(start + OPEN.length());
            int end = body.indexOf(CLOSE);
            if (end >= 0) return new Split(body.substring(0, end), before + body.substring(end + CLOSE.length()));
            return new Split(body.substring(0, ToolCallParser.beforePartial(body, CLOSE)), before);
        }
    };

    private static final String OPEN = "<think>", CLOSE = "</think>";

    /** The reasoning (null: the answer has none) and the content. */
    record Split(String reasoning, String content) {
    }

    /** The whole answer's reasoning and content. */
    abstract Split split(String text);

    /**
     * What of an answer still being streamed is certain: reasoning and content that later text cannot
     * change, a tag's first characters held back until the tag is whole. Each is a prefix of the
     * next call's, as the answer grows.
     */
    abstract Split streamed(String text);

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
}
