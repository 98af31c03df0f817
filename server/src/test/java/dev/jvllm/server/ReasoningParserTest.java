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
     * Streamed a character at a time (tags split anywhere), what each step shows is a prefix of what
     * the next shows, and the whole answer's split is what the stream ends with.
     */
    @Test
    void aStreamedAnswerNeverTakesBackWhatItShowed() {
        List<String> answers = List.of("<think>Two and two.</think>4", "Two and two.</think>The answer is 4", "4 < 5, so </thi",
                "<think>a</think>", "plain <thinking> text", "<think>cut off by the length", "\nHi<think>x</think>y", "\n<think>x</think>Answer");
        for (ReasoningParser parser : ReasoningParser.values()) {
            for (String answer : answers) {
                String reasoning = "", content = "";
                for (int i = 0; i <= answer.length(); i++) {
                    ReasoningParser.Split shown = parser.streamed(answer.substring(0, i));
                    String r = shown.reasoning() == null ? "" : shown.reasoning();
                    assertTrue(r.startsWith(reasoning), parser + " took back reasoning of '" + answer + "' at " + i);
                    assertTrue(shown.content().startsWith(content), parser + " took back content of '" + answer + "' at " + i);
                    reasoning = r;
                    content = shown.content();
                }
                ReasoningParser.Split whole = parser.split(answer);
                String wholeReasoning = whole.reasoning() == null ? "" : whole.reasoning();
                assertTrue(wholeReasoning.startsWith(reasoning) && whole.content().startsWith(content),
                        parser + " streamed past the whole answer's split of '" + answer + "'");
            }
        }
    }
}
