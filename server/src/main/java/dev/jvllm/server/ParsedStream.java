package dev.jvllm.server;

import dev.jvllm.ToolCallParser;

/**
 * One chat answer streamed through a reasoning parser or a tool-call parser: its text so far, and
 * what of it is certain and not yet sent. Each piece is looked at once, so a long answer costs time
 * in proportion to its length (parsing the whole text again for each piece made a 32k-token answer
 * cost seconds of the serving thread). Not thread-safe.
 */
final class ParsedStream {
    private final StringBuilder text = new StringBuilder();
    private final ReasoningParser reasoningParser;
    private final ReasoningParser.Searches searches = new ReasoningParser.Searches();
    private final ToolCallParser.Holding calls;
    private final boolean holdContent;
    private int sentReasoning, sentContent;

    /** Reasoning and content to send ("" where none). */
    record Piece(String reasoning, String content) {
    }

    /**
     * @param reasoningParser null: the answer is all content
     * @param calls where content is held back for tool calls ("auto"); null: not held
     * @param holdContent whether all content waits for the answer's end (a "required" list of calls)
     */
    ParsedStream(ReasoningParser reasoningParser, ToolCallParser.Holding calls, boolean holdContent) {
        this.reasoningParser = reasoningParser;
        this.calls = calls;
        this.holdContent = holdContent;
    }

    /** The answer's next piece of text in; out, what it made certain. */
    Piece append(String piece) {
        text.append(piece);
        String reasoning = "";
        CharSequence content = text;
        if (reasoningParser != null) {
            ReasoningParser.Spans spans = reasoningParser.streamed(text, searches);
            int reasoningLength = spans.reasoningStart() < 0 ? 0 : spans.reasoningEnd() - spans.reasoningStart();
            if (reasoningLength > sentReasoning) {
                reasoning = text.substring(spans.reasoningStart() + sentReasoning, spans.reasoningEnd());
                sentReasoning = reasoningLength;
            }
            content = spans.content(text);
        }
        int held = holdContent ? 0 : calls != null ? calls.heldFrom(content) : content.length();
        if (held <= sentContent) return new Piece(reasoning, "");
        String shown = content.subSequence(sentContent, held).toString();
        sentContent = held;
        return new Piece(reasoning, shown);
    }

    /** The answer's last piece in; out, its whole text, to be parsed whole ({@link #rest}). */
    String end(String lastPiece) {
        return text.append(lastPiece).toString();
    }

    /** The answer's text so far. */
    String text() {
        return text.toString();
    }

    /** What of the whole answer's reasoning and content (as parsed at its end) was not sent. */
    Piece rest(String reasoning, String content) {
        String r = reasoning == null || reasoning.length() <= sentReasoning ? "" : reasoning.substring(sentReasoning);
        String c = content.length() <= sentContent ? "" : content.substring(sentContent);
        return new Piece(r, c);
    }
}
