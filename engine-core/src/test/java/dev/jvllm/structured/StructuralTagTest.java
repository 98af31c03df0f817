package dev.jvllm.structured;

import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class StructuralTagTest {

    private static final ObjectMapper JSON = new ObjectMapper();
    private static final List<String> TRIGGERS = List.of("<fn=", "<<");
    private static final List<StructuralTag.Structure> STRUCTURES;

    static {
        try {
            STRUCTURES = List.of(
                    new StructuralTag.Structure("<fn=a>", JSON.readTree("{\"type\": \"object\", \"properties\": {\"x\": {\"type\": \"integer\"}}, "
                            + "\"required\": [\"x\"]}"), "</fn>"),
                    new StructuralTag.Structure("<fn=b>", JSON.readTree("{\"enum\": [\"p\", \"q\"]}"), "</fn>"),
                    new StructuralTag.Structure("<<", JSON.readTree("{\"type\": \"boolean\"}"), ">>"));
        } catch (Exception e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    /**
     * The language written out directly, as xgrammar reads the text as it comes: the first position
     * where a trigger is completed ends the free text; a structure whose begin starts with a trigger
     * completed there, written from that trigger's start, then a document its schema's regex matches,
     * its end, and the rest the same way.
     */
    private static boolean reference(String text) {
        for (int end = 0; end < text.length(); end++) {
            boolean completed = false;
            for (String trigger : TRIGGERS) {
                int start = end - trigger.length() + 1;
                if (start < 0 || !text.startsWith(trigger, start)) continue;
                completed = true;
                for (StructuralTag.Structure s : STRUCTURES) {
                    if (!s.begin().startsWith(trigger) || !text.startsWith(s.begin(), start)) continue;
                    Regex document = Regex.compile(JsonSchemaRegex.of(s.schema()));
                    int from = start + s.begin().length();
                    for (int close = text.indexOf(s.end(), from); close >= 0; close = text.indexOf(s.end(), close + 1)) {
                        if (document.matches(text.substring(from, close)) && reference(text.substring(close + s.end().length()))) return true;
                    }
                }
            }
            if (completed) return false;
        }
        return true;
    }

    private static final String[] FREE = {"", "a", "<", "<f", "<fn", "fn=", "hello ", ">", "</fn>", "<x", "=", "< <"};
    private static final String[] INSIDE = {"{\"x\": 1}", "{\"x\":-20}", "\"p\"", "\"q\"", "true", "false", "{}", "\"r\"", "1"};
    private static final String[] BEGINS = {"<fn=a>", "<fn=b>", "<<", "<fn=c>"};
    private static final String[] ENDS = {"</fn>", ">>", ""};

    @Test
    void theGrammarAcceptsWhatTheLanguageHoldsOnRandomTexts() {
        Pushdown tag = new Pushdown(StructuralTag.rules(STRUCTURES, TRIGGERS));
        Random random = new Random(5);
        int accepted = 0, refused = 0;
        for (int i = 0; i < 4000; i++) {
            StringBuilder b = new StringBuilder();
            for (int part = random.nextInt(4); part >= 0; part--) {
                b.append(FREE[random.nextInt(FREE.length)]);
                if (random.nextInt(3) > 0) {
                    b.append(BEGINS[random.nextInt(BEGINS.length)]).append(INSIDE[random.nextInt(INSIDE.length)])
                            .append(ENDS[random.nextInt(ENDS.length)]);
                }
            }
            String text = b.toString();
            boolean expected = reference(text);
            assertEquals(expected, tag.matches(text), text);
            if (expected) {
                accepted++;
                Pushdown.Configuration at = tag.start();
                for (int k = 0; k < text.length(); k++) {
                    at = tag.step(at, text.charAt(k));
                    assertNotNull(at, text.substring(0, k + 1));
                }
            } else {
                refused++;
            }
        }
        assertTrue(accepted > 400 && refused > 800, accepted + " accepted, " + refused + " refused");
    }

    @Test
    void aTriggerOpensATagThatMustCloseBeforeTheEnd() {
        Pushdown tag = new Pushdown(StructuralTag.rules(STRUCTURES, TRIGGERS));
        assertTrue(tag.matches("Let me look. <fn=a>{\"x\": 3}</fn> Done."));
        assertFalse(tag.matches("Let me look. <fn=a>{\"x\": 3}"), "inside a tag at the end");
        assertTrue(tag.step(tag.start(), "Let me look. <fn=a>{\"x\": 3}") != null, "but on the way to one");
        assertFalse(tag.matches("a <fn=z> b"), "a trigger opens only a structure");
        assertTrue(tag.matches("a <f n= b <fn"), "what only begins a trigger is free text");
        assertFalse(tag.matches("<<fn=a>{\"x\": 1}</fn>"), "'<<' is completed first: a boolean tag, not a function");
        assertTrue(tag.matches("x<<true>>"));
    }

    @Test
    void badTagsAreRefusedNamingTheProblem() throws Exception {
        var schema = JSON.readTree("{\"type\": \"string\"}");
        assertEquals("structure 0's begin '<call>' starts with none of the triggers [<fn=]", assertThrows(IllegalArgumentException.class,
                () -> StructuralTag.rules(List.of(new StructuralTag.Structure("<call>", schema, "</call>")), List.of("<fn="))).getMessage());
        assertThrows(IllegalArgumentException.class, () -> StructuralTag.rules(List.of(), List.of("<")));
        assertEquals("structure 0's begin '<fn=x>' can never open: another trigger is completed first as it is written",
                assertThrows(IllegalArgumentException.class, () -> StructuralTag.rules(List.of(new StructuralTag.Structure("<fn=x>", schema, "</fn>")),
                        List.of("<fn", "f"))).getMessage());
        assertThrows(IllegalArgumentException.class, () -> StructuralTag.rules(List.of(new StructuralTag.Structure("<", schema, ">")), List.of("")));
    }

    /** Free text is one parse stack however many structures share a trigger: a mask's walk costs what it costs for one. */
    @Test
    void aMasksCostDoesNotGrowWithTheNumberOfStructures() throws Exception {
        Random random = new Random(4);
        List<String> texts = new java.util.ArrayList<>();
        for (int i = 0; i < 20_000; i++) {
            StringBuilder t = new StringBuilder();
            for (int k = 1 + random.nextInt(5); k > 0; k--) t.append("abc<fun=ction>{} \"".charAt(random.nextInt(18)));
            texts.add(t.toString());
        }
        TokenVocabulary vocabulary = new TokenVocabulary(texts.size(), id -> texts.get(id).getBytes(java.nio.charset.StandardCharsets.UTF_8));
        long[] steps = new long[2];
        int[] counts = {1, 60};
        for (int c = 0; c < 2; c++) {
            List<StructuralTag.Structure> tools = new java.util.ArrayList<>();
            for (int k = 0; k < counts[c]; k++) {
                tools.add(new StructuralTag.Structure("<function=tool" + k + ">", JSON.readTree("{\"type\": \"object\", \"properties\": "
                        + "{\"x\": {\"type\": \"integer\"}}}"), "</function>"));
            }
            Pushdown tag = new Pushdown(StructuralTag.rules(tools, List.of("<function=")));
            long before = tag.steps();
            vocabulary.allowed(tag, tag.step(tag.start(), "some text "));
            steps[c] = tag.steps() - before;
        }
        assertTrue(steps[1] < steps[0] * 1.5, "1 structure: " + steps[0] + " steps, 60: " + steps[1]);
    }

    @Test
    void callsAreRenamedButWrittenBackslashesAreNot() {
        assertEquals("\\\\g{x}\\g{s0-ref1}[\\]]", StructuralTag.renameCalls("\\\\g{x}\\g{ref1}[\\]]", "s0-"));
    }
}
