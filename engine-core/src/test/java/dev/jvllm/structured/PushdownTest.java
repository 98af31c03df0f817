package dev.jvllm.structured;

import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.json.JsonMapper;
import dev.jvllm.sampling.TokenConstraint;
import org.junit.jupiter.api.Test;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class PushdownTest {


    private static final ObjectMapper STRICT = JsonMapper.builder().enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS).build();

    private static boolean jacksonAccepts(String text) {
        try {
            JsonNode node = STRICT.readTree(text);
            return node != null && !node.isMissingNode();
        } catch (Exception e) {
            return false;
        }
    }

    @Test
    void aJsonGrammarAcceptsWhatJacksonAcceptsOnRandomTexts() {
        Pushdown json = new Pushdown(GbnfGrammar.parse(GbnfGrammar.JSON));
        Random random = new Random(7);
        int valid = 0, invalid = 0;
        for (int i = 0; i < 3000; i++) {
            String document = randomValue(random, 0);
            String text = random.nextBoolean() ? mutate(random, document) : document;
            boolean expected = jacksonAccepts(text);
            assertEquals(expected, json.matches(text), () -> "disagrees with Jackson on: " + text);
            if (expected) {
                valid++;
                // Every prefix of a valid document can still be completed.
                Pushdown.Configuration at = json.start();
                for (int k = 0; k < text.length(); k++) {
                    at = json.step(at, text.charAt(k));
                    int done = k;
                    assertNotNull(at, () -> "a valid document's prefix was refused: " + text.substring(0, done + 1));
                }
            } else {
                invalid++;
            }
        }
        assertTrue(valid > 1000 && invalid > 500, valid + " valid, " + invalid + " invalid");
    }

    @Test
    void aPrefixLivesExactlyWhenSomeCompletionOfItMatches() {
        // Balanced brackets: a prefix can be completed as long as no bracket closes the wrong one.
        Pushdown brackets = new Pushdown(GbnfGrammar.parse("root ::= ( \"(\" root \")\" | \"[\" root \"]\" )*"));
        char[] alphabet = {'(', ')', '[', ']'};
        for (int length = 0; length <= 8; length++) {
            int[] digits = new int[length];
            for (long n = 0; n < Math.pow(4, length); n++) {
                long rest = n;
                StringBuilder b = new StringBuilder();
                for (int k = 0; k < length; k++) {
                    b.append(alphabet[(int) (rest % 4)]);
                    rest /= 4;
                }
                String text = b.toString();
                ArrayDeque<Character> open = new ArrayDeque<>();
                boolean viable = true;
                for (char c : text.toCharArray()) {
                    if (c == '(' || c == '[') open.push(c);
                    else if (open.isEmpty() || open.pop() != (c == ')' ? '(' : '[')) {
                        viable = false;
                        break;
                    }
                }
                Pushdown.Configuration at = brackets.step(brackets.start(), text);
                assertEquals(viable, at != null, text);
                assertEquals(viable && open.isEmpty(), brackets.accepting(at), text);
            }
        }
    }

    @Test
    void rightRecursionKeepsItsStackFlatAndDeepNestingFailsClearly() {
        Pushdown list = new Pushdown(GbnfGrammar.parse("root ::= \"a\" root | \"b\""));
        assertTrue(list.matches("a".repeat(100_000) + "b"));
        assertFalse(list.matches("a".repeat(100_000)));

        Pushdown nested = new Pushdown(GbnfGrammar.parse("root ::= \"(\" root? \")\""));
        assertTrue(nested.matches("(".repeat(500) + ")".repeat(500)));
        var deep = assertThrows(Regex.TooComplexException.class, () -> nested.step(nested.start(), "(".repeat(Pushdown.MAX_DEPTH + 1)));
        assertEquals("the grammar nests deeper than " + Pushdown.MAX_DEPTH + " rules", deep.getMessage());
    }

    @Test
    void aGrammarThatLeavesTooManyReadingsOpenFailsRatherThanGrow() {
        // After n x's, 2^n stacks wait for the a's and b's that close them. (Alternatives within one rule
        // share their automaton's states, so the readings must run through different rules.)
        Pushdown ambiguous = new Pushdown(GbnfGrammar.parse("root ::= a | b\na ::= \"x\" root \"a\" | \"\"\nb ::= \"x\" root \"b\" | \"\""));
        assertTrue(ambiguous.matches("xxxabb"));
        var e = assertThrows(Regex.TooComplexException.class, () -> ambiguous.step(ambiguous.start(), "x".repeat(12)));
        assertEquals("the grammar leaves more than " + Pushdown.MAX_STACKS + " readings open at one point", e.getMessage());
    }

    @Test
    void badGrammarsAreRefusedNamingTheProblem() {
        assertEquals("the rule 'expr' is left-recursive (expr -> expr before reading a character), which is not supported",
                assertThrows(IllegalArgumentException.class, () -> new Pushdown(GbnfGrammar.parse(
                        "root ::= expr\nexpr ::= expr \"+\" term | term\nterm ::= [0-9]+"))).getMessage());
        // Through a rule that may match nothing.
        assertTrue(assertThrows(IllegalArgumentException.class, () -> new Pushdown(GbnfGrammar.parse(
                "root ::= a\na ::= sp b\nb ::= a \"x\" | \"y\"\nsp ::= \" \"?"))).getMessage().contains("(a -> b -> a before reading"));
        assertEquals("rule 'root': the rule 'value' is not defined", assertThrows(IllegalArgumentException.class,
                () -> new Pushdown(GbnfGrammar.parse("root ::= \"[\" value \"]\""))).getMessage());
        assertEquals("the grammar has no 'root' rule, where the output starts",
                assertThrows(IllegalArgumentException.class, () -> GbnfGrammar.parse("start ::= \"a\"")).getMessage());
        assertEquals("grammar line 2, column 13: unclosed string literal",
                assertThrows(IllegalArgumentException.class, () -> GbnfGrammar.parse("root ::= a\na ::= \"b\" \"c")).getMessage());
        assertEquals("grammar line 2, column 1: the rule 'root' is defined twice",
                assertThrows(IllegalArgumentException.class, () -> GbnfGrammar.parse("root ::= \"a\"\nroot ::= \"b\"")).getMessage());
        assertEquals("grammar line 1, column 11: unknown escape '\\q'",
                assertThrows(IllegalArgumentException.class, () -> GbnfGrammar.parse("root ::= \"\\q\"")).getMessage());
        assertEquals("grammar line 1, column 10: an empty character class matches nothing",
                assertThrows(IllegalArgumentException.class, () -> GbnfGrammar.parse("root ::= []")).getMessage());
    }

    @Test
    void rulesThatCanNeverFinishAreRefused() {
        // Their prefixes would live on with no way to complete: the output would run to its length limit.
        assertEquals("the rule 'root' can never finish: every way through it calls a rule that never finishes (a recursion with no way out)",
                assertThrows(IllegalArgumentException.class, () -> new Pushdown(GbnfGrammar.parse("root ::= \"{\" root \"}\""))).getMessage());
        assertTrue(assertThrows(IllegalArgumentException.class, () -> new Pushdown(GbnfGrammar.parse(
                "root ::= \"a\" x | \"b\"\nx ::= \"c\" x"))).getMessage().startsWith("the rule 'x' can never finish"));
        // A rule never called is left alone.
        assertTrue(new Pushdown(GbnfGrammar.parse("root ::= \"b\"\nx ::= \"c\" x")).matches("b"));
    }

    @Test
    void aStartWithTooManyReadingsIsRefusedWhenCompiledNotWhenFollowed() {
        var e = assertThrows(IllegalArgumentException.class, () -> new Pushdown(GbnfGrammar.parse("root ::= n{0,1000} \"x\"\nn ::= \"y\"?")));
        assertEquals("at its start the grammar leaves more than " + Pushdown.MAX_STACKS + " readings open at one point", e.getMessage());
    }

    @Test
    void rulesTooLargeTogetherAreRefusedBeforeTheyFillTheMemory() {
        StringBuilder grammar = new StringBuilder("root ::= r0\n");
        for (int i = 0; i < 100; i++) grammar.append("r").append(i).append(" ::= (\"a\"{1000}){20}\n");
        var e = assertThrows(IllegalArgumentException.class, () -> new Pushdown(GbnfGrammar.parse(grammar.toString())));
        assertTrue(e.getMessage().startsWith("the grammar's rules pass " + Regex.MAX_NFA_STATES + " automaton states together"), e.getMessage());
    }

    @Test
    void longChainsOfRulesCompileAndFollow() {
        StringBuilder grammar = new StringBuilder("root ::= r0\n");
        for (int i = 0; i < 5000; i++) grammar.append("r").append(i).append(" ::= r").append(i + 1).append("\n");
        grammar.append("r5000 ::= \"a\"\n");
        Pushdown chain = new Pushdown(GbnfGrammar.parse(grammar.toString()));
        assertTrue(chain.matches("a"));
        assertFalse(chain.matches(""));
        assertFalse(chain.matches("aa"));
    }

    @Test
    void aMaskWhoseWalkWouldHoldTheEngineForSecondsFailsInstead() {
        // 200 readings stay open over any run of letters: a walk of the vocabulary steps each of them at each node.
        StringBuilder grammar = new StringBuilder("root ::= w0");
        for (int i = 1; i < 200; i++) grammar.append(" | w").append(i);
        for (int i = 0; i < 200; i++) grammar.append("\nw").append(i).append(" ::= [a-z]* \"<").append(i).append(">\"");
        Pushdown many = new Pushdown(GbnfGrammar.parse(grammar.toString()));
        Random random = new Random(1);
        List<String> texts = new ArrayList<>();
        for (int i = 0; i < 40_000; i++) {
            StringBuilder word = new StringBuilder();
            for (int k = 1 + random.nextInt(6); k > 0; k--) word.append((char) ('a' + random.nextInt(26)));
            texts.add(word.toString());
        }
        TokenVocabulary vocabulary = new TokenVocabulary(texts.size(), id -> texts.get(id).getBytes(java.nio.charset.StandardCharsets.UTF_8));
        var e = assertThrows(Regex.TooComplexException.class, () -> vocabulary.allowed(many, many.start()));
        assertTrue(e.getMessage().contains("masking the vocabulary takes more than " + Pushdown.MAX_WALK_STEPS + " steps"), e.getMessage());
        // As the engine masks it, one reading at a time: the readings share one budget.
        TokenConstraint constraint = new Grammar(many, vocabulary, new int[0]).newConstraint();
        assertThrows(Regex.TooComplexException.class, () -> constraint.mask(new float[texts.size()]));
    }

    @Test
    void aRuleWhoseAutomatonIsFullMarksTheGrammarSpent() {
        // [ab]* "a" [ab]{14}: a rule whose deterministic states double with each letter, as the regex test's exploding pattern.
        Pushdown exploding = new Pushdown(GbnfGrammar.parse("root ::= [ab]* \"a\" [ab]{14}"));
        Random random = new Random(2);
        Pushdown.Configuration at = exploding.start();
        assertFalse(exploding.full());
        try {
            for (int i = 0; i < 100_000; i++) at = exploding.step(at, random.nextBoolean() ? 'a' : 'b');
        } catch (Regex.TooComplexException expected) {
            // the rule's automaton passed its states
        }
        assertTrue(exploding.full(), "a spent grammar must leave the engine's cache");
    }

    @Test
    void gbnfReadsLiteralsClassesEscapesRepetitionsAndComments() {
        Pushdown p = new Pushdown(GbnfGrammar.parse("""
                root ::= greeting ", " name{1,3} # a comment "with a quote
                  ("!" | "?")
                greeting ::= "h\\u00e9llo" | "\\U0001F600"
                name ::= [A-Z] [a-z\\-]* " "?
                """));
        assertTrue(p.matches("h\u00e9llo, Ann!"));
        assertTrue(p.matches("\uD83D\uDE00, Ann Bo-b Cy ?"));
        assertFalse(p.matches("h\u00e9llo, Ann Bo Cy Di!"), "at most three names");
        assertFalse(p.matches("h\u00e9llo, ann!"));

        // '.' and negated classes take a character beyond U+FFFF as one.
        Pushdown one = new Pushdown(GbnfGrammar.parse("root ::= . [^a]"));
        assertTrue(one.matches("\uD83D\uDE00\uD83D\uDE01"));
        assertFalse(one.matches("\uD83D\uDE00a"));
        assertFalse(one.matches("\uD83D\uDE00\uD83D"), "half a pair is not a character");
        // Classes are of code points: ranges beyond U+FFFF, and a range over the surrogates holds none of them.
        Pushdown emoji = new Pushdown(GbnfGrammar.parse("root ::= [\\U0001F600-\\U0001F64F a]+"));
        assertTrue(emoji.matches("\uD83D\uDE00a\uD83D\uDE4F"));
        assertFalse(emoji.matches("\uD83D\uDE50"));
        Pushdown wide = new Pushdown(GbnfGrammar.parse("root ::= [ -\\U0010FFFF]{2}"));
        assertFalse(wide.matches("\uD83D\uDE00"), "one character, not two");
        assertTrue(wide.matches("a\uD83D\uDE00"));
        assertTrue(new Pushdown(GbnfGrammar.parse("root ::= [\\U00010000-\\U0010FFFF]")).matches("\uDBFF\uDFFF"));
        // Quantifiers in turn, and bounds past what is supported named.
        Pushdown stacked = new Pushdown(GbnfGrammar.parse("root ::= \"a\"*? \"b\"+ +"));
        assertTrue(stacked.matches("aaab") && stacked.matches("bb") && !stacked.matches("ba"));
        assertEquals("grammar line 1, column 13: repetition bounds above 1000 are not supported: '{1001}'",
                assertThrows(IllegalArgumentException.class, () -> GbnfGrammar.parse("root ::= \"a\"{1001}")).getMessage());
    }

    @Test
    void tokenMasksAllowExactlyTheTokensSomeCompletionKeeps() {
        List<String> texts = List.of("{", "}", "[", "]", "\"", "\"a\"", ":", ",", " ", "1", "12", "0", "-", ".5", "e", "true",
                "tr", "ue", "null", "{\"", "\":", "\"}", "]]", "[[", "x", "\\", "\\n", "\\u00", "é");
        int eos = texts.size();
        TokenVocabulary vocabulary = new TokenVocabulary(texts.size() + 1,
                id -> id < texts.size() ? texts.get(id).getBytes(java.nio.charset.StandardCharsets.UTF_8) : null);
        Pushdown json = new Pushdown(GbnfGrammar.parse(GbnfGrammar.JSON));
        Grammar grammar = new Grammar(json, vocabulary, new int[]{eos});
        TokenConstraint constraint = grammar.newConstraint();
        Random random = new Random(3);
        Pushdown.Configuration at = json.start();
        StringBuilder output = new StringBuilder();
        for (int step = 0; step < 40; step++) {
            float[] logits = new float[texts.size() + 1];
            constraint.mask(logits);
            List<Integer> allowed = new ArrayList<>();
            for (int id = 0; id < texts.size(); id++) {
                Pushdown.Configuration next = json.step(at, texts.get(id));
                assertEquals(next != null, logits[id] == 0f, "token '" + texts.get(id) + "' after '" + output + "'");
                if (next != null) allowed.add(id);
            }
            assertEquals(json.accepting(at), logits[eos] == 0f, "the end after '" + output + "'");
            if (allowed.isEmpty()) break;
            int drawn = allowed.get(random.nextInt(allowed.size()));
            constraint.advance(drawn);
            at = json.step(at, texts.get(drawn));
            output.append(texts.get(drawn));
        }
        assertTrue(output.length() > 20, output.toString());
        assertNull(json.step(json.start(), "}"));
    }

    /**
     * A grammar's masks, made from each rule state's inside walk (once per grammar) and the walks past
     * its boundaries, equal a whole walk of the vocabulary from the point, at every step of random
     * documents, over a vocabulary of random pieces of JSON.
     */
    @Test
    void masksFromInsideWalksEqualWholeWalks() {
        Random random = new Random(11);
        java.util.Set<String> pieces = new java.util.LinkedHashSet<>();
        while (pieces.size() < 3000) {
            String document = randomValue(random, 0);
            int from = random.nextInt(document.length()), to = Math.min(document.length(), from + 1 + random.nextInt(6));
            if (!Character.isLowSurrogate(document.charAt(from)) && (to == document.length() || !Character.isLowSurrogate(document.charAt(to)))) {
                pieces.add(document.substring(from, to));
            }
        }
        List<String> texts = new ArrayList<>(pieces);
        int eos = texts.size();
        TokenVocabulary vocabulary = new TokenVocabulary(texts.size() + 1,
                id -> id < texts.size() ? texts.get(id).getBytes(java.nio.charset.StandardCharsets.UTF_8) : null);
        Pushdown json = new Pushdown(GbnfGrammar.parse(GbnfGrammar.JSON));
        Grammar grammar = new Grammar(json, vocabulary, new int[]{eos});
        int compared = 0;
        for (int document = 0; document < 30; document++) {
            TokenConstraint constraint = grammar.newConstraint();
            Pushdown.Configuration at = json.start();
            for (int step = 0; step < 60; step++) {
                float[] logits = new float[texts.size() + 1];
                constraint.mask(logits);
                long[] whole = vocabulary.allowed(json, at);
                List<Integer> allowed = new ArrayList<>();
                for (int id = 0; id < texts.size(); id++) {
                    boolean inWhole = (whole[id >>> 6] & (1L << (id & 63))) != 0;
                    assertEquals(inWhole, logits[id] == 0f, "token '" + texts.get(id) + "' at step " + step);
                    if (inWhole) allowed.add(id);
                }
                compared++;
                if (allowed.isEmpty()) break;
                int drawn = allowed.get(random.nextInt(allowed.size()));
                constraint.advance(drawn);
                at = json.step(at, texts.get(drawn));
            }
        }
        assertTrue(compared > 500, compared + " masks compared");
    }

    @Test
    void rulesCarryTheirNamesIntoErrorsAndText() {
        GrammarRules rules = GbnfGrammar.parse("a ::= \"x\"\nroot ::= a a");
        assertEquals(List.of("root", "a"), rules.names());
        assertEquals(Map.of("root", "\\g{a}\\g{a}", "a", "(?:x)"), rules.rules());
        assertEquals("root ::= \\g{a}\\g{a}\na ::= (?:x)\n", rules.toString());
        assertTrue(new Pushdown(rules).matches("xx"));
    }

    // ---- random JSON texts ----------------------------------------------------------------------

    private static final String[] SCALARS = {"true", "false", "null", "0", "-0", "12", "3.25", "-7e10", "1E-3", "2.5e+4", "\"\"",
            "\"a b\"", "\"\\\"q\\\\\"", "\"\\u00e9\\n\"", "\"é\uD83D\uDE00\"", "\"\\/\""};
    private static final String[] WS = {"", "", "", " ", "\n", "\t ", "\r\n"};
    private static final char[] NOISE = {'{', '}', '[', ']', ',', ':', '"', '\\', '0', '1', '-', '+', '.', 'e', 'E', 'u', 'a', 'n',
            't', ' ', '\t', '\u0001', '/', 'x'};

    private static String ws(Random random) {
        return WS[random.nextInt(WS.length)];
    }

    private static String randomValue(Random random, int depth) {
        int kind = depth > 3 ? 2 : random.nextInt(3);
        StringBuilder b = new StringBuilder(ws(random));
        if (kind == 0) {
            b.append('{').append(ws(random));
            int members = random.nextInt(4);
            for (int m = 0; m < members; m++) {
                if (m > 0) b.append(ws(random)).append(',').append(ws(random));
                b.append("\"k").append(m).append('"').append(ws(random)).append(':').append(randomValue(random, depth + 1));
            }
            b.append(ws(random)).append('}');
        } else if (kind == 1) {
            b.append('[').append(ws(random));
            int items = random.nextInt(4);
            for (int m = 0; m < items; m++) {
                if (m > 0) b.append(ws(random)).append(',');
                b.append(randomValue(random, depth + 1));
            }
            b.append(ws(random)).append(']');
        } else {
            b.append(SCALARS[random.nextInt(SCALARS.length)]);
        }
        return b.append(ws(random)).toString();
    }

    private static String mutate(Random random, String text) {
        StringBuilder b = new StringBuilder(text);
        int edits = 1 + random.nextInt(2);
        for (int e = 0; e < edits; e++) {
            int at = random.nextInt(b.length() + 1);
            switch (random.nextInt(3)) {
                case 0 -> {
                    // Not between the two halves of a surrogate pair: Jackson and the grammar would then judge half a character.
                    if (at < b.length() && !Character.isSurrogate(b.charAt(at))) b.deleteCharAt(at);
                }
                case 1 -> {
                    if (at == 0 || at == b.length() || !Character.isLowSurrogate(b.charAt(at))) b.insert(at, NOISE[random.nextInt(NOISE.length)]);
                }
                default -> {
                    if (at < b.length() && !Character.isSurrogate(b.charAt(at))) b.setCharAt(at, NOISE[random.nextInt(NOISE.length)]);
                }
            }
        }
        return b.toString();
    }
}
