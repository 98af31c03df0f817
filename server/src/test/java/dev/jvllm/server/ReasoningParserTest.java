package dev.jvllm.server;

import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The reasoning parsers: whole answers split as vLLM's parsers split them, and streamed ones that agree. */
class ReasoningParserTest {

    @Test
    void deepseekR1ReasonsUntilItClosesItsThinking() {
        ReasoningParser r1 = ReasoningParser.named("deepseek_r1");
        assertEquals(new ReasoningParser.Split("Two and two.", "4"), r1.split("Two and two.</think>4"));
        assertEquals(new ReasoningParser.Split("Two and two.", "4"), r1.split("<think>Two and two.</think>4"), "a leading tag dropped");
        assertEquals(new ReasoningParser.Split("Still thinking", ""), r1.split("Still thinking"), "never closed: all reasoning");
    }

    @Test
    void qwen3ReasonsOnlyBetweenItsTags() {
        ReasoningParser qwen3 = ReasoningParser.named("qwen3");
        assertEquals(new ReasoningParser.Split("Two and two.", "\n\n4"), qwen3.split("<think>Two and two.</think>\n\n4"));
        assertEquals(new ReasoningParser.Split("Let me think", ""), qwen3.split("<think>Let me think"), "thinking cut off by the length");
        assertEquals(new ReasoningParser.Split("x", "\nHi y"), qwen3.split("\nHi <think>x</think>y"), "text outside the tags is content");
        ReasoningParser.Split plain = qwen3.split("4");
        assertNull(plain.reasoning(), "thinking off: no reasoning");
        assertEquals("4", plain.content());
        assertThrows(IllegalArgumentException.class, () -> ReasoningParser.named("granite"));
    }

    /**
     * Streamed a character at a time (tags split anywhere), what each step makes certain is what the
     * text so far shows (searches kept over the stream agree with fresh ones), pieces sent never
     * need taking back, and the whole answer's split is what the stream ends with.
     */
    @Test
    void aStreamedAnswerNeverTakesBackWhatItShowed() {
        List<String> answers = List.of("<think>Two and two.</think>4", "Two and two.</think>The answer is 4", "4 < 5, so </thi",
                "<think>a</think>", "plain <thinking> text", "<think>cut off by the length", "\nHi<think>x</think>y", "\n<think>x</think>Answer",
                "  <thin", "</think></think>");
        for (ReasoningParser parser : ReasoningParser.values()) {
            for (String answer : answers) {
                ParsedStream stream = new ParsedStream(parser, null, false);
                ReasoningParser.Searches kept = new ReasoningParser.Searches();
                StringBuilder reasoning = new StringBuilder(), content = new StringBuilder();
                for (int i = 1; i <= answer.length(); i++) {
                    String sofar = answer.substring(0, i);
                    ReasoningParser.Spans fresh = parser.streamed(sofar, new ReasoningParser.Searches());
                    assertEquals(fresh, parser.streamed(sofar, kept), parser + " kept searches differ on '" + sofar + "'");
                    ParsedStream.Piece piece = stream.append(answer.substring(i - 1, i));
                    reasoning.append(piece.reasoning());
                    content.append(piece.content());
                    String freshReasoning = fresh.reasoningStart() < 0 ? "" : sofar.substring(fresh.reasoningStart(), fresh.reasoningEnd());
                    assertEquals(freshReasoning, reasoning.toString(), parser + " reasoning of '" + sofar + "'");
                    assertEquals(fresh.content(sofar).toString(), content.toString(), parser + " content of '" + sofar + "'");
                }
                ReasoningParser.Split whole = parser.split(answer);
                String wholeReasoning = whole.reasoning() == null ? "" : whole.reasoning();
                assertTrue(wholeReasoning.startsWith(reasoning.toString()) && whole.content().startsWith(content.toString()),
                        parser + " streamed past the whole answer's split of '" + answer + "'");
                ParsedStream.Piece rest = stream.rest(whole.reasoning(), whole.content());
                assertEquals(wholeReasoning, reasoning + rest.reasoning());
                assertEquals(whole.content(), content + rest.content());
            }
        }
    }

    /** Tool calls held back behind reasoning: the content view the parser holds is the content after the thinking. */
    @Test
    void contentAfterTheThinkingIsHeldWhereACallMayStart() {
        ParsedStream stream = new ParsedStream(ReasoningParser.QWEN3, dev.jvllm.ToolCallParser.HERMES.holding(), false);
        StringBuilder reasoning = new StringBuilder(), content = new StringBuilder();
        String answer = "Hi <think>maybe a call</think> then \n<tool_call>{\"name\": \"f\", \"arguments\": {}}</tool_call>";
        for (char c : answer.toCharArray()) {
            ParsedStream.Piece piece = stream.append(String.valueOf(c));
            reasoning.append(piece.reasoning());
            content.append(piece.content());
        }
        assertEquals("maybe a call", reasoning.toString());
        assertEquals("Hi  then", content.toString(), "the text outside the tags, up to the whitespace before the call");
    }
}
