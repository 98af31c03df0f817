package dev.jvllm.structured;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Map;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The constrained-decoding regex against java.util.regex on whole matches, and its prefix states. */
class RegexTest {

    private static final ObjectMapper JSON = new ObjectMapper();

    @Test
    void wholeMatchesAgreeWithJavaRegex() {
        String[] patterns = {"a|bc*", "(ab)+c?", "[a-c]{2,3}x", "\\d+(\\.\\d{1,2})?", "[^\"\\\\]*", "(?:yes|no|maybe)", "\\w\\s\\W",
                "colou?r", "x{3}", "x{2,}", "[\\x41-\\x43]+", "\\u00e9t\\u00e9", ".?.", "(a|b)*abb"};
        String[] texts = {"", "a", "b", "bccc", "ab", "ababc", "abx", "abcx", "acbx", "12", "12.5", "12.505", "he said", "q\"", "yes",
                "maybe", "mayb", "a b!", "color", "colour", "xxx", "xx", "xxxxx", "ABCA", "été", "\n", "ab", "aabb", "babb"};
        for (String pattern : patterns) {
            Regex regex = Regex.compile(pattern);
            Pattern java = Pattern.compile(pattern);
            for (String text : texts) {
                assertEquals(java.matcher(text).matches(), regex.matches(text), pattern + " on '" + text + "'");
            }
        }
    }

    @Test
    void aPrefixIsAliveExactlyWhenSomeContinuationCanMatch() {
        Regex regex = Regex.compile("\\{\"a\": (true|false)\\}");
        int state = regex.step(regex.start(), "{\"a\": tr");
        assertTrue(state != Regex.DEAD && !regex.accepting(state) && regex.canContinue(state));
        assertEquals(Regex.DEAD, regex.step(state, 'x'));
        int done = regex.step(state, "ue}");
        assertTrue(regex.accepting(done));
        assertFalse(regex.canContinue(done));
    }

    @Test
    void unsupportedSyntaxIsRefusedNamingThePosition() {
        var lookahead = assertThrows(IllegalArgumentException.class, () -> Regex.compile("a(?=b)"));
        assertTrue(lookahead.getMessage().contains("at 2"), lookahead.getMessage());
        assertThrows(IllegalArgumentException.class, () -> Regex.compile("(a)\\1"));
        assertThrows(IllegalArgumentException.class, () -> Regex.compile("(ab"));
        assertThrows(IllegalArgumentException.class, () -> Regex.compile("a{3,1}"));
    }

    @Test
    void aSchemasRegexAcceptsItsDocumentsAndRefusesOthers() throws Exception {
        JsonNode schema = JSON.readTree("""
                {"type": "object", "properties": {
                  "name": {"type": "string", "maxLength": 8},
                  "age": {"type": "integer"},
                  "tags": {"type": "array", "items": {"enum": ["a", "b"]}, "maxItems": 2},
                  "score": {"type": ["number", "null"]},
                  "pet": {"$ref": "#/$defs/pet"}},
                 "required": ["name", "age"],
                 "$defs": {"pet": {"type": "object", "properties": {"kind": {"const": "cat"}}, "required": ["kind"]}}}""");
        Regex regex = Regex.compile(JsonSchemaRegex.of(schema));
        for (String ok : new String[]{"{\"name\": \"Ann\", \"age\": 41}", "{\"name\":\"Bo\",\"age\":-3,\"tags\":[\"a\", \"b\"]}",
                "{ \"name\": \"\", \"age\": 0, \"score\": null, \"pet\": {\"kind\": \"cat\"} }", "{\"name\": \"x\", \"age\": 1, \"score\": 2.5e3}"}) {
            assertTrue(regex.matches(ok), ok);
            JSON.readTree(ok);
        }
        for (String bad : new String[]{"{\"age\": 41, \"name\": \"Ann\"}", "{\"name\": \"Ann\"}", "{\"name\": \"Annabelle!\", \"age\": 1}",
                "{\"name\": \"A\", \"age\": 1.5}", "{\"name\": \"A\", \"age\": 1, \"tags\": [\"c\"]}", "{\"name\": \"A\", \"age\": 1, \"x\": 2}",
                "{\"name\": \"A\", \"age\": 01}", "{\"name\": \"A\", \"age\": 1, \"tags\": [\"a\", \"a\", \"a\"]}"}) {
            assertFalse(regex.matches(bad), bad);
        }
    }

    @Test
    void integerBoundsAreFollowedExactly() throws Exception {
        long[][] ranges = {{0, 751}, {3, 3}, {-20, 15}, {-751, -9}, {100, 1099}, {0, 0}};
        for (long[] r : ranges) {
            Regex regex = Regex.compile(JsonSchemaRegex.of(JSON.readTree("{\"type\": \"integer\", \"minimum\": " + r[0] + ", \"maximum\": " + r[1] + "}")));
            for (long v = -1200; v <= 1200; v++) {
                assertEquals(v >= r[0] && v <= r[1], regex.matches(Long.toString(v)), r[0] + ".." + r[1] + " on " + v);
            }
            assertFalse(regex.matches("007"));
        }
        Regex from = Regex.compile(JsonSchemaRegex.of(JSON.readTree("{\"type\": \"integer\", \"exclusiveMinimum\": 41}")));
        assertFalse(from.matches("41"));
        assertTrue(from.matches("42") && from.matches("99") && from.matches("100") && from.matches("123456"));
        Regex upTo = Regex.compile(JsonSchemaRegex.of(JSON.readTree("{\"type\": \"integer\", \"maximum\": -3}")));
        assertTrue(upTo.matches("-3") && upTo.matches("-4000") && !upTo.matches("-2") && !upTo.matches("0"));
        assertTrue(Regex.compile(JsonSchemaRegex.of(JSON.readTree("{\"type\": \"number\", \"minimum\": 0}"))).matches("2.5"));
    }

    /**
     * Number bounds (inclusive, exclusive, draft 4's boolean form, one side or both): a decimal without
     * an exponent matches exactly when its value is in the range, over random bounds and values.
     */
    @Test
    void numberBoundsAreFollowedExactly() throws Exception {
        java.util.Random random = new java.util.Random(11);
        for (int round = 0; round < 300; round++) {
            java.math.BigDecimal low = randomDecimal(random), high = randomDecimal(random);
            if (low.compareTo(high) > 0) {
                java.math.BigDecimal t = low;
                low = high;
                high = t;
            }
            boolean lowStrict = random.nextBoolean(), highStrict = random.nextBoolean(), hasLow = random.nextInt(4) > 0, hasHigh = random.nextInt(4) > 0;
            if (hasLow && hasHigh && low.compareTo(high) == 0 && (lowStrict || highStrict)) continue;  // empty: refused, below
            var schema = JSON.createObjectNode().put("type", "number");
            if (hasLow) schema.put(lowStrict ? "exclusiveMinimum" : "minimum", low);
            if (hasHigh) schema.put(highStrict ? "exclusiveMaximum" : "maximum", high);
            Regex regex = Regex.compile(JsonSchemaRegex.of(schema));
            for (int i = 0; i < 400; i++) {
                java.math.BigDecimal value = randomDecimal(random);
                String text = value.toPlainString();
                if (text.startsWith("-") && value.signum() == 0) continue;  // "-0": never written
                boolean in = (!hasLow || (lowStrict ? value.compareTo(low) > 0 : value.compareTo(low) >= 0))
                        && (!hasHigh || (highStrict ? value.compareTo(high) < 0 : value.compareTo(high) <= 0));
                assertEquals(in, regex.matches(text), schema + " on " + text);
            }
            for (String text : new String[]{low.toPlainString(), high.toPlainString(), low.toPlainString() + "0001", high.toPlainString() + "1"}) {
                java.math.BigDecimal value = new java.math.BigDecimal(text);
                if (text.startsWith("-") && value.signum() == 0) continue;
                boolean in = (!hasLow || (lowStrict ? value.compareTo(low) > 0 : value.compareTo(low) >= 0))
                        && (!hasHigh || (highStrict ? value.compareTo(high) < 0 : value.compareTo(high) <= 0));
                if (text.matches("-?(0|[1-9][0-9]*)(\\.[0-9]+)?")) assertEquals(in, regex.matches(text), schema + " on " + text);
            }
        }
        Regex unit = Regex.compile(JsonSchemaRegex.of(JSON.readTree("{\"type\": \"number\", \"minimum\": 0, \"maximum\": 1}")));
        assertTrue(unit.matches("0") && unit.matches("0.5") && unit.matches("1") && unit.matches("1.000"));
        assertFalse(unit.matches("1.0001") || unit.matches("-0.5") || unit.matches("1e0"), "no exponent under bounds");
        assertTrue(unit.matches("0." + "1".repeat(16)));
        assertFalse(unit.matches("0." + "1".repeat(17)), "at most 16 digits after the point, so that sampling cannot run on");
        Regex any = Regex.compile(JsonSchemaRegex.of(JSON.readTree("{\"type\": \"number\"}")));
        assertTrue(any.matches("-12.5e+300") && any.matches("0." + "9".repeat(16)) && !any.matches("0." + "9".repeat(17)));
        Regex draft4 = Regex.compile(JsonSchemaRegex.of(JSON.readTree("{\"type\": \"number\", \"minimum\": 2.5, \"exclusiveMinimum\": true}")));
        assertFalse(draft4.matches("2.5"));
        assertTrue(draft4.matches("2.51"));
        // A numeric exclusive bound beside an inclusive one: the tighter holds, and a looser exclusive one leaves the inclusive as it is.
        Regex mixed = Regex.compile(JsonSchemaRegex.of(JSON.readTree("{\"type\": \"number\", \"minimum\": 5, \"exclusiveMinimum\": 3}")));
        assertTrue(mixed.matches("5") && !mixed.matches("4.9"));
        Regex draft4Integer = Regex.compile(JsonSchemaRegex.of(JSON.readTree("{\"type\": \"integer\", \"minimum\": 5, \"exclusiveMinimum\": true}")));
        assertTrue(!draft4Integer.matches("5") && draft4Integer.matches("6"));
        var empty = assertThrows(IllegalArgumentException.class,
                () -> JsonSchemaRegex.of(JSON.readTree("{\"type\": \"number\", \"minimum\": 2, \"exclusiveMaximum\": 2}")));
        assertTrue(empty.getMessage().contains("no number"), empty.getMessage());
    }

    /** A decimal between -30 and 30 with up to three fraction digits (a few exactly whole). */
    private static java.math.BigDecimal randomDecimal(java.util.Random random) {
        int scale = random.nextInt(4), span = 30 * (int) Math.pow(10, scale);
        return java.math.BigDecimal.valueOf(random.nextInt(2 * span + 1) - span, scale);
    }

    @Test
    void jsonModeAcceptsNestedObjects() throws Exception {
        Pushdown regex = new Pushdown(JsonSchemaRegex.anyJsonObjectRules("", JsonSchemaRegex.ONE_SPACE));
        for (String ok : new String[]{"{}", "{\"a\": [1, {\"b\": null}], \"c\": \"d\\n\"}", "{\"x\": -0.5e-3}"}) {
            assertTrue(regex.matches(ok), ok);
            JSON.readTree(ok);
        }
        for (String bad : new String[]{"[]", "{\"a\": }", "{a: 1}", "{\"a\": 1,}"}) assertFalse(regex.matches(bad), bad);
    }

    /**
     * vLLM's default whitespace: documents laid out over lines, indented by spaces or tabs, with
     * CRLF line ends, for a schema (also a recursive one) and in JSON mode; never inside a token.
     */
    @Test
    void anyWhitespaceTakesPrettyPrintedDocumentsButNotSpacesInsideTokens() throws Exception {
        var schema = JSON.readTree("{\"type\": \"object\", \"properties\": {\"a\": {\"type\": \"array\", \"items\": {\"type\": \"number\"}}, "
                + "\"b\": {\"type\": \"boolean\"}}, \"required\": [\"a\", \"b\"]}");
        Regex any = Regex.compile(JsonSchemaRegex.rules(schema, JsonSchemaRegex.ANY_WHITESPACE).rules().get("root"));
        for (String laidOut : new String[]{"{\n  \"a\": [\n    1.5,\n    2\n  ],\n  \"b\": true\n}", "{\r\n\t\"a\" :[ ] ,\"b\":false}",
                "{\"a\":[1,2],\"b\":true}", "{ \"a\" : [ 1 , 2 ] , \"b\" : true }"}) {
            assertTrue(any.matches(laidOut), laidOut);
        }
        for (String split : new String[]{"{\"a\": [1 2], \"b\": true}", "{\"a\": [1. 5], \"b\": true}", "{\"a\": [], \"b\": tr ue}",
                "{\"a\": [], \"b\": true}\n", "{\"a\": [], \"b\": true,\n}", "{\"a\": [],\f\"b\": true}"}) {
            assertFalse(any.matches(split), split);
        }
        // tuples, empty objects and arrays, const (a const's own value stays as the schema writes it, compact)
        Regex tuple = Regex.compile(JsonSchemaRegex.rules(JSON.readTree("{\"type\": \"array\", \"prefixItems\": [{\"type\": \"object\"}, "
                + "{\"const\": {\"k\": [1, 2]}}], \"items\": false}"), JsonSchemaRegex.ANY_WHITESPACE).rules().get("root"));
        assertTrue(tuple.matches("[\n  {\n  },\n  {\"k\":[1,2]}\n]"), "laid out around a compact const");
        assertFalse(tuple.matches("[{}, {\"k\": [1, 2]}]"), "inside the const's own value");
        // an alternation given as the pattern stays between its two tokens
        Regex alternation = Regex.compile(JsonSchemaRegex.rules(JSON.readTree("{\"type\": \"array\", \"items\": {\"type\": \"integer\"}}"),
                "\n| ?").rules().get("root"));
        assertTrue(alternation.matches("[\n1, 2 ]"));
        assertFalse(alternation.matches("[ "));
        Pushdown tree = new Pushdown(JsonSchemaRegex.rules(JSON.readTree("{\"type\": \"array\", \"items\": {\"anyOf\": "
                + "[{\"type\": \"integer\"}, {\"$ref\": \"#\"}]}}"), JsonSchemaRegex.ANY_WHITESPACE));
        assertTrue(tree.matches("[\n  1,\n  [\n    2,\n    []\n  ]\n]"));
        assertFalse(tree.matches("[1, [2 3]]"));
        Pushdown jsonMode = new Pushdown(JsonSchemaRegex.anyJsonObjectRules(JsonSchemaRegex.ANY_WHITESPACE, JsonSchemaRegex.ANY_WHITESPACE));
        assertTrue(jsonMode.matches("\n\n{\n\t\"a\": [\n\t\t1,\n\t\t{ \"b\" : null }\n\t]\n}"));
        assertFalse(jsonMode.matches("{\"a\": nu ll}"));
    }

    /** vLLM's disable_any_whitespace: compact documents only, for a schema (also a recursive one) and in JSON mode. */
    @Test
    void compactJsonHasNoWhitespaceBetweenTokens() throws Exception {
        var schema = JSON.readTree("{\"type\": \"object\", \"properties\": {\"a\": {\"type\": \"array\", \"items\": {\"type\": \"integer\"}}, "
                + "\"b\": {\"type\": \"string\"}}, \"required\": [\"a\", \"b\"]}");
        Regex compact = Regex.compile(JsonSchemaRegex.rules(schema, JsonSchemaRegex.NO_SPACE).rules().get("root"));
        assertTrue(compact.matches("{\"a\":[1,2],\"b\":\"x y\"}"));
        for (String spaced : new String[]{"{\"a\": [1,2],\"b\":\"x\"}", "{\"a\":[1, 2],\"b\":\"x\"}", "{ \"a\":[],\"b\":\"x\"}"}) {
            assertFalse(compact.matches(spaced), spaced);
        }
        assertTrue(Regex.compile(JsonSchemaRegex.rules(schema, JsonSchemaRegex.ONE_SPACE).rules().get("root")).matches("{\"a\": [1, 2], \"b\": \"x y\"}"));
        Pushdown tree = new Pushdown(JsonSchemaRegex.rules(JSON.readTree("{\"type\": \"array\", \"items\": {\"anyOf\": "
                + "[{\"type\": \"integer\"}, {\"$ref\": \"#\"}]}}"), JsonSchemaRegex.NO_SPACE));
        assertTrue(tree.matches("[1,[2,[],[[3]]],4]"));
        assertFalse(tree.matches("[1, [2]]"));
        Pushdown jsonMode = new Pushdown(JsonSchemaRegex.anyJsonObjectRules("", JsonSchemaRegex.NO_SPACE));
        assertTrue(jsonMode.matches("{\"a\":[1,{\"b\":null}]}"));
        assertFalse(jsonMode.matches("{\"a\": 1}"));
    }

    @Test
    void patternsTooLargeOrTooBranchyAreBounded() {
        var nested = assertThrows(IllegalArgumentException.class, () -> Regex.compile("(x{1000}){1000}"));
        assertTrue(nested.getMessage().contains("too large"), nested.getMessage());
        // Exponentially many deterministic states: the steps stop at the bound instead of taking all memory.
        Regex branchy = Regex.compile("(a|b)*a(a|b){24}");
        java.util.Random random = new java.util.Random(1);
        assertThrows(Regex.TooComplexException.class, () -> {
            int state = branchy.start();
            for (int i = 0; i < 100_000; i++) state = branchy.step(state, random.nextBoolean() ? 'a' : 'b');
        });
        assertTrue(branchy.statesMade() <= Regex.MAX_DFA_STATES);
    }

    @Test
    void deepNestingIsRefusedRatherThanOverflowingTheStack() throws Exception {
        var groups = assertThrows(IllegalArgumentException.class, () -> Regex.compile("(".repeat(5000) + "a" + ")".repeat(5000)));
        assertTrue(groups.getMessage().contains("nest deeper"), groups.getMessage());
        String schema = "{\"type\": \"array\", \"items\": ".repeat(500) + "{\"type\": \"integer\"}" + "}".repeat(500);
        var nested = assertThrows(IllegalArgumentException.class, () -> JsonSchemaRegex.of(JSON.readTree(schema)));
        assertTrue(nested.getMessage().contains("nests deeper"), nested.getMessage());
    }

    /**
     * Tuples (prefixItems, as Pydantic writes tuple types): on every array of up to four items drawn
     * from integers, strings and booleans, the regex agrees with the tuple's meaning.
     */
    @Test
    void prefixItemsAreFollowedInOrderThenItemsWithinTheBounds() throws Exception {
        record Case(String schema, java.util.function.Predicate<List<String>> valid) {
        }
        List<Case> cases = List.of(
                new Case("{\"type\": \"array\", \"prefixItems\": [{\"type\": \"integer\"}, {\"type\": \"string\"}], \"minItems\": 2, "
                        + "\"maxItems\": 2}", items -> items.equals(List.of("int", "str"))),
                new Case("{\"prefixItems\": [{\"type\": \"integer\"}], \"items\": {\"type\": \"boolean\"}}",
                        items -> items.isEmpty() || items.getFirst().equals("int") && items.stream().skip(1).allMatch("bool"::equals)),
                new Case("{\"type\": \"array\", \"prefixItems\": [{\"type\": \"integer\"}, {\"type\": \"integer\"}], \"items\": false, "
                        + "\"minItems\": 1}", items -> !items.isEmpty() && items.size() <= 2 && items.stream().allMatch("int"::equals)),
                new Case("{\"type\": \"array\", \"prefixItems\": [{\"type\": \"string\"}], \"items\": {\"type\": \"integer\"}, "
                        + "\"minItems\": 2, \"maxItems\": 3}", items -> items.size() >= 2 && items.size() <= 3 && items.getFirst().equals("str")
                        && items.stream().skip(1).allMatch("int"::equals)),
                // Draft 7's tuple: items as a list, then additionalItems.
                new Case("{\"type\": \"array\", \"items\": [{\"type\": \"boolean\"}, {\"type\": \"integer\"}], \"additionalItems\": false, "
                        + "\"minItems\": 2}", items -> items.equals(List.of("bool", "int"))),
                new Case("{\"type\": \"array\", \"items\": false}", List::isEmpty),
                new Case("{\"type\": \"array\", \"items\": true, \"maxItems\": 1}", items -> items.size() <= 1));
        Map<String, String> literal = Map.of("int", "7", "str", "\"a\"", "bool", "true");
        List<String> kinds = List.of("int", "str", "bool");
        for (Case c : cases) {
            Regex regex = Regex.compile(JsonSchemaRegex.of(JSON.readTree(c.schema())));
            for (int length = 0; length <= 4; length++) {
                for (int code = 0; code < Math.pow(3, length); code++) {
                    List<String> items = new java.util.ArrayList<>();
                    for (int k = 0, rest = code; k < length; k++, rest /= 3) items.add(kinds.get(rest % 3));
                    String text = "[" + String.join(", ", items.stream().map(literal::get).toList()) + "]";
                    assertEquals(c.valid().test(items), regex.matches(text), c.schema() + " on " + text);
                }
            }
        }
    }

    @Test
    void keywordsThatAreNotFollowedAreRefusedByName() throws Exception {
        for (String[] refused : new String[][]{{"{\"type\": \"integer\", \"multipleOf\": 3}", "multipleOf"}, {"{\"not\": {\"type\": \"string\"}}", "not"},
                {"{\"allOf\": [{\"type\": \"object\"}, {\"required\": [\"a\"]}]}", "allOf"},
                {"{\"type\": \"object\", \"properties\": {\"a\": {\"type\": \"object\", \"minProperties\": 1}}}", "minProperties"}}) {
            var e = assertThrows(IllegalArgumentException.class, () -> JsonSchemaRegex.of(JSON.readTree(refused[0])));
            assertTrue(e.getMessage().startsWith("'" + refused[1] + "'"), e.getMessage());
        }
        // Keywords beside a $ref or a one-schema allOf would be dropped: refused; annotations are taken.
        for (String beside : new String[]{"{\"$defs\": {\"B\": {\"type\": \"integer\"}}, \"allOf\": [{\"$ref\": \"#/$defs/B\"}], "
                + "\"properties\": {\"extra\": {\"type\": \"string\"}}}", "{\"allOf\": [{\"type\": \"integer\"}], \"type\": \"string\"}",
                "{\"$defs\": {\"S\": {\"type\": \"string\"}}, \"$ref\": \"#/$defs/S\", \"maxLength\": 2}"}) {
            var e = assertThrows(IllegalArgumentException.class, () -> JsonSchemaRegex.of(JSON.readTree(beside)));
            assertTrue(e.getMessage().contains("beside"), e.getMessage());
        }
        assertTrue(Regex.compile(JsonSchemaRegex.of(JSON.readTree("{\"$defs\": {\"S\": {\"type\": \"string\"}}, \"properties\": "
                + "{\"a\": {\"$ref\": \"#/$defs/S\", \"description\": \"a text\", \"default\": \"x\"}}, \"required\": [\"a\"]}")))
                .matches("{\"a\": \"y\"}"));
        // Tuples too long to follow are refused by name, not by the parser's stack.
        StringBuilder huge = new StringBuilder("{\"type\": \"array\", \"items\": false, \"prefixItems\": [");
        for (int i = 0; i < 3000; i++) huge.append(i == 0 ? "" : ", ").append("{\"type\": \"integer\"}");
        var tooLong = assertThrows(IllegalArgumentException.class, () -> JsonSchemaRegex.of(JSON.readTree(huge.append("]}").toString())));
        assertTrue(tooLong.getMessage().contains("3000 prefixItems, more than 1000"), tooLong.getMessage());
        // An object that may hold nothing is only {}; a required property the object cannot hold is refused.
        Regex empty = Regex.compile(JsonSchemaRegex.of(JSON.readTree("{\"type\": \"object\", \"additionalProperties\": false}")));
        assertTrue(empty.matches("{}") && !empty.matches("{\"a\": 1}"));
        var missing = assertThrows(IllegalArgumentException.class, () -> JsonSchemaRegex.of(JSON.readTree(
                "{\"type\": \"object\", \"properties\": {\"a\": {\"type\": \"integer\"}}, \"required\": [\"a\", \"b\"]}")));
        assertTrue(missing.getMessage().startsWith("the required property 'b' at # is not among its properties"), missing.getMessage());
        // uniqueItems is taken, not enforced (Java's and Python's sets absorb a repeat).
        assertTrue(Regex.compile(JsonSchemaRegex.of(JSON.readTree("{\"type\": \"array\", \"items\": {\"type\": \"integer\"}, "
                + "\"uniqueItems\": true}"))).matches("[1, 1]"));
        var inverted = assertThrows(IllegalArgumentException.class, () -> JsonSchemaRegex.of(JSON.readTree(
                "{\"type\": \"array\", \"items\": {\"type\": \"integer\"}, \"minItems\": 3, \"maxItems\": 1}")));
        assertEquals("no array at # has 3 to 1 items", inverted.getMessage());
        // What changes nothing is taken: uniqueItems false, an allOf of one.
        assertTrue(Regex.compile(JsonSchemaRegex.of(JSON.readTree("{\"allOf\": [{\"type\": \"array\", \"uniqueItems\": false, "
                + "\"items\": {\"type\": \"integer\"}}]}"))).matches("[1, 1]"));
    }

    @Test
    void recursiveReferencesBecomeRulesThatCallThemselves() throws Exception {
        JsonNode schema = JSON.readTree("{\"$defs\": {\"node\": {\"type\": \"object\", \"properties\": {\"v\": {\"type\": \"integer\"}, "
                + "\"next\": {\"$ref\": \"#/$defs/node\"}}, \"required\": [\"v\"]}}, \"$ref\": \"#/$defs/node\"}");
        var e = assertThrows(IllegalArgumentException.class, () -> JsonSchemaRegex.of(schema));
        assertEquals("the schema is recursive (ref1), which a regular expression cannot express", e.getMessage());

        GrammarRules rules = JsonSchemaRegex.rules(schema, JsonSchemaRegex.ONE_SPACE);
        assertEquals(List.of("root", "ref1"), rules.names());
        Pushdown list = new Pushdown(rules);
        String deep = "{\"v\": 1, \"next\": ".repeat(40) + "{\"v\": 0}" + "}".repeat(40);
        assertTrue(list.matches(deep));
        assertTrue(list.matches("{\"v\":1,\"next\":{\"v\":2}}"));
        assertFalse(list.matches("{\"v\": 1, \"next\": {\"next\": {\"v\": 2}}}"), "v is required at every level");
        assertFalse(list.matches(deep + "}"));

        // A schema that refers to itself as a whole, "#".
        Pushdown tree = new Pushdown(JsonSchemaRegex.rules(JSON.readTree("{\"type\": \"array\", \"items\": {\"anyOf\": "
                + "[{\"type\": \"integer\"}, {\"$ref\": \"#\"}]}}"), JsonSchemaRegex.ONE_SPACE));
        assertTrue(tree.matches("[1, [2, [], [[3]]], 4]"));
        assertFalse(tree.matches("[1, [2, [], [[3]], 4]"));
    }
}
