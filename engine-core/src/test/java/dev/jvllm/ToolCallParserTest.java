package dev.jvllm;

import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Tool calls read out of models' free answers, as each family writes them. */
class ToolCallParserTest {

    @Test
    void hermesBlocksBecomeCallsAndTheTextBeforeThemTheContent() {
        ToolCallParser.Parsed parsed = ToolCallParser.named("hermes").parse("Let me look that up.\n<tool_call>\n{\"name\": \"get_weather\", "
                + "\"arguments\": {\"city\": \"Paris\"}}\n</tool_call>\n<tool_call>{\"name\": \"get_time\", \"arguments\": {}}</tool_call>");
        assertEquals("Let me look that up.", parsed.content());
        assertEquals(List.of(new ToolCallParser.Call("get_weather", "{\"city\":\"Paris\"}"), new ToolCallParser.Call("get_time", "{}")),
                parsed.calls());
        // A block that is not a call leaves the whole answer as content.
        ToolCallParser.Parsed broken = ToolCallParser.HERMES.parse("x <tool_call>{\"name\": \"f\", \"arguments\": {</tool_call>");
        assertTrue(broken.calls().isEmpty());
        assertEquals("x <tool_call>{\"name\": \"f\", \"arguments\": {</tool_call>", broken.content());
        assertTrue(ToolCallParser.HERMES.parse("Just text.").calls().isEmpty());
    }

    /** The calls of a required choice's list; none (null) where the list did not begin or close. */
    @Test
    void aListedAnswerIsItsCallsOrNoneWhereTheListIsIncomplete() {
        assertEquals(List.of(new ToolCallParser.Call("f", "{\"a\":1}")), ToolCallParser.listed(" [{\"name\": \"f\", \"parameters\": {\"a\": 1}}]"));
        for (String incomplete : new String[]{"", " ", " \n\t", "[{\"name\": \"f\"", "{\"name\": \"f\"}"}) {
            assertNull(ToolCallParser.listed(incomplete), "'" + incomplete + "'");
        }
    }

    @Test
    void llama3JsonAnswersAreCallsSeparatedBySemicolons() {
        ToolCallParser.Parsed one = ToolCallParser.named("llama3_json").parse("<|python_tag|>{\"name\": \"search\", \"parameters\": {\"q\": \"a;b\"}}");
        assertEquals(List.of(new ToolCallParser.Call("search", "{\"q\":\"a;b\"}")), one.calls());
        ToolCallParser.Parsed two = ToolCallParser.LLAMA3_JSON.parse("{\"name\": \"f\", \"parameters\": {}}; {\"name\": \"g\", \"parameters\": {\"n\": [1, 2]}}");
        assertEquals(2, two.calls().size());
        assertEquals("g", two.calls().get(1).name());
        assertTrue(ToolCallParser.LLAMA3_JSON.parse("The answer is {not json}").calls().isEmpty());
        assertThrows(IllegalArgumentException.class, () -> ToolCallParser.named("mistral"));
    }

    @Test
    void aStreamedAnswerIsHeldBackFromWhereACallMayStart() {
        ToolCallParser hermes = ToolCallParser.named("hermes");
        assertEquals(11, hermes.heldFrom("Let me see."), "plain text goes out as it comes");
        assertEquals(11, hermes.heldFrom("Let me see.\n"), "whitespace a call may follow waits");
        assertEquals(11, hermes.heldFrom("Let me see. <tool"), "a call's start, not yet whole");
        assertEquals(11, hermes.heldFrom("Let me see.\n<tool_call>\n{\"name\""));
        assertEquals(5, hermes.heldFrom("2 < 3"), "a '<' that cannot start a call waits only while it could");
        assertEquals(6, hermes.heldFrom("2 < 3!"));

        ToolCallParser llama = ToolCallParser.named("llama3_json");
        assertEquals(0, llama.heldFrom("  "), "nothing shown yet");
        assertEquals(0, llama.heldFrom("{\"name\": "));
        assertEquals(0, llama.heldFrom("<|python"), "the tag's start");
        assertEquals(0, llama.heldFrom("<|python_tag|>{"));
        assertEquals(8, llama.heldFrom("The time"), "an answer that does not start as a call is content");
    }

    /**
     * A holding kept over a stream answers what heldFrom answers for each text so far, streamed a
     * character at a time: it looks only at what each piece added, and must not lose what came before.
     */
    @Test
    void aHoldingKeptOverAStreamAgreesWithTheWholeTextAtEveryStep() {
        List<String> answers = List.of("Let me see.\n<tool_call>\n{\"name\": \"f\"}</tool_call>", "2 < 3 <tool <tool_call>x",
                "a  \n \n  b   \n\n<tool_call>", "   \n", "<|python_tag|>{\"name\": 1}", "  {\"name\"", "  <|pyth", "  <|pytho!n", "The time");
        for (ToolCallParser parser : ToolCallParser.values()) {
            for (String answer : answers) {
                ToolCallParser.Holding holding = parser.holding();
                StringBuilder growing = new StringBuilder();
                for (int i = 0; i < answer.length(); i++) {
                    growing.append(answer.charAt(i));
                    assertEquals(parser.heldFrom(growing.toString()), holding.heldFrom(growing),
                            parser + " held '" + growing + "' elsewhere when kept over the stream");
                }
            }
        }
    }

    /**
     * A long answer's stream looks at each character a bounded number of times, not once for every
     * piece after it (which had made a 32k-token answer cost seconds): counted over 20 000 pieces.
     */
    @Test
    void aLongStreamLooksAtEachCharacterAFewTimes() {
        for (ToolCallParser parser : ToolCallParser.values()) {
            ToolCallParser.Holding holding = parser.holding();
            CountingText growing = new CountingText();
            String piece = "word <tool \n";  // a partial tag and whitespace in every piece
            for (int i = 0; i < 20_000; i++) {
                growing.text.append(piece);
                int held = holding.heldFrom(growing);
                assertEquals(parser == ToolCallParser.HERMES ? growing.length() - 2 : growing.length(), held);
            }
            assertTrue(growing.reads < 8L * growing.length(), parser + " read " + growing.reads + " characters of " + growing.length());
        }
    }

    /** A growing text that counts the characters read from it. */
    private static final class CountingText implements CharSequence {
        final StringBuilder text = new StringBuilder();
        long reads;

        @Override
        public int length() {
            return text.length();
        }

        @Override
        public char charAt(int index) {
            reads++;
            return text.charAt(index);
        }

        @Override
        public CharSequence subSequence(int start, int end) {
            reads += end - start;
            return text.subSequence(start, end);
        }

        @Override
        public String toString() {
            reads += text.length();
            return text.toString();
        }
    }
}
