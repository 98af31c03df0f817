package dev.jvllm.models;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.jvllm.CompletionOutput;
import dev.jvllm.FinishReason;
import dev.jvllm.InvalidRequestException;
import dev.jvllm.LLM;
import dev.jvllm.RequestOutput;
import dev.jvllm.SamplingParams;
import dev.jvllm.StructuredOutputs;
import dev.jvllm.structured.Regex;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Structured outputs on the demo model (byte-level BPE, 4 096 tokens): every output drawn under a
 * JSON schema, a choice or a regex is one the constraint accepts, whatever the weights would have
 * chosen, and it ends with the end-of-sequence token once complete.
 */
class StructuredOutputsTest {

    private static final Path DEMO = Files.isDirectory(Path.of("../models/jvllm-demo")) ? Path.of("../models/jvllm-demo")
            : Path.of("models/jvllm-demo");
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final String SCHEMA = """
            {"type": "object", "properties": {
              "name": {"type": "string", "maxLength": 12},
              "member": {"type": "boolean"},
              "country": {"enum": ["France", "Germany", "Italy"]},
              "seats": {"type": "array", "items": {"enum": [1, 2, 3]}, "maxItems": 3}},
             "required": ["name", "country"]}""";

    static LLM llm;

    @BeforeAll
    static void load() {
        llm = LLM.builder().model(DEMO.toString()).device("cpu").build();
    }

    @AfterAll
    static void close() {
        llm.close();
    }

    private static SamplingParams sampled(StructuredOutputs outputs, int n) {
        return SamplingParams.builder().temperature(1.0).n(n).seed(7L).maxTokens(200).structuredOutputs(outputs).build();
    }

    @Test
    void jsonSchemaOutputsAreValidDocuments() throws Exception {
        RequestOutput out = llm.generate("The European Parliament", sampled(StructuredOutputs.json(SCHEMA), 6));
        for (CompletionOutput c : out.outputs()) {
            assertEquals(FinishReason.STOP, c.finishReason(), c.text());
            JsonNode doc = JSON.readTree(c.text());
            assertTrue(doc.path("name").isTextual() && doc.path("name").asText().length() <= 12, c.text());
            assertTrue(Set.of("France", "Germany", "Italy").contains(doc.path("country").asText()), c.text());
            assertTrue(doc.path("member").isMissingNode() || doc.path("member").isBoolean(), c.text());
            for (JsonNode seat : doc.path("seats")) assertTrue(seat.isInt() && seat.asInt() >= 1 && seat.asInt() <= 3, c.text());
            doc.fieldNames().forEachRemaining(f -> assertTrue(Set.of("name", "member", "country", "seats").contains(f), c.text()));
        }
    }

    /**
     * String patterns and formats, and number bounds: each sampled document parses as JSON (quotes and
     * backslashes the pattern admits come escaped), its strings match their pattern and format, and its
     * number is in its range.
     */
    @Test
    void patternedAndFormattedStringsMatchInValidDocuments() throws Exception {
        String quotedWord = "\"[a-z]{2,4}\\\\\"";  // a quote, a word, a backslash and a quote: JSON escapes three of them
        var properties = JSON.createObjectNode();
        properties.putObject("code").put("type", "string").put("pattern", "^[A-Z]{3}-[0-9]{2}$");
        properties.putObject("quoted").put("type", "string").put("pattern", quotedWord);
        properties.putObject("day").put("type", "string").put("format", "date");
        properties.putObject("score").put("type", "number").put("minimum", 0).put("exclusiveMaximum", 1);
        var schema = JSON.createObjectNode().put("type", "object").<com.fasterxml.jackson.databind.node.ObjectNode>set("properties", properties);
        schema.putArray("required").add("code").add("quoted").add("day").add("score");
        RequestOutput out = llm.generate("The European Parliament", sampled(StructuredOutputs.json(schema), 6));
        for (CompletionOutput c : out.outputs()) {
            assertEquals(FinishReason.STOP, c.finishReason(), c.text());
            JsonNode doc = JSON.readTree(c.text());
            assertTrue(doc.path("code").asText().matches("[A-Z]{3}-[0-9]{2}"), c.text());
            assertTrue(doc.path("quoted").asText().matches(quotedWord), c.text());
            assertTrue(doc.path("day").asText().matches("[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"), c.text());
            assertTrue(doc.path("score").isNumber() && doc.path("score").asDouble() >= 0 && doc.path("score").decimalValue().compareTo(java.math.BigDecimal.ONE) < 0,
                    c.text());
        }
    }

    @Test
    void choiceAndRegexOutputsMatch() {
        RequestOutput choice = llm.generate("The vote was", sampled(StructuredOutputs.choice(List.of("for", "against", "abstained")), 4));
        for (CompletionOutput c : choice.outputs()) {
            assertTrue(Set.of("for", "against", "abstained").contains(c.text()), c.text());
            assertEquals(FinishReason.STOP, c.finishReason());
        }
        RequestOutput regex = llm.generate("Call", sampled(StructuredOutputs.regex("\\+[0-9]{2} [0-9]{3}-[0-9]{4}"), 4));
        for (CompletionOutput c : regex.outputs()) assertTrue(c.text().matches("\\+[0-9]{2} [0-9]{3}-[0-9]{4}"), c.text());
    }

    @Test
    void jsonObjectOutputsStayJsonAndAConstrainedRequestLeavesItsBatchAlone() throws Exception {
        SamplingParams plain = SamplingParams.builder().temperature(0).maxTokens(24).build();
        String alone = llm.generate("The European Parliament", plain).text();
        List<RequestOutput> both = llm.generatePrompts(List.of(dev.jvllm.Prompt.text("The European Parliament"),
                dev.jvllm.Prompt.text("The Commission")), plain);
        assertEquals(alone, both.getFirst().text());

        RequestOutput json = llm.generate("The Commission", SamplingParams.builder().temperature(0.8).seed(3L).n(3).maxTokens(60)
                .structuredOutputs(StructuredOutputs.jsonObject()).build());
        dev.jvllm.structured.Pushdown anyObject = new dev.jvllm.structured.Pushdown(StructuredOutputs.jsonObject().rules().orElseThrow());
        for (CompletionOutput c : json.outputs()) {
            assertTrue(anyObject.step(anyObject.start(), c.text()) != null, c.text());
            if (c.finishReason() == FinishReason.STOP) assertTrue(JSON.readTree(c.text()).isObject(), c.text());
        }
        // Nested to any depth, as vLLM's json_object allows; still only objects, written compactly.
        assertTrue(anyObject.matches("{\"a\": ".repeat(12) + "[1, {\"b\": null}]" + "}".repeat(12)));
        assertTrue(anyObject.matches(" {}"));
        assertTrue(!anyObject.matches("[1]") && !anyObject.matches("{\"a\":  1}"));
    }

    @Test
    void aJsonOutputMayOpenWithOneSpaceAsSentencePieceTokensWriteIt() {
        Regex regex = Regex.compile(StructuredOutputs.json(SCHEMA).pattern());
        assertTrue(regex.matches(" {\"name\": \"A\", \"country\": \"Italy\"}"));
        assertTrue(regex.matches("{\"name\": \"A\", \"country\": \"Italy\"}"));
        assertTrue(!regex.matches("  {\"name\": \"A\", \"country\": \"Italy\"}"));
    }

    /**
     * A recursive grammar (GBNF): arrays nested at least twice, of any depth, around one to four small
     * numbers. Each sampled output is complete and, read by Jackson, has exactly that shape.
     */
    @Test
    void grammarOutputsAreSentencesOfARecursiveGrammar() throws Exception {
        StructuredOutputs nested = StructuredOutputs.grammar("""
                root   ::= "[" inner "]"
                inner  ::= "[" number ("," number){0,3} "]" | "[" inner "]"
                number ::= [1-9] [0-9]{0,2}
                """);
        RequestOutput out = llm.generate("The European Parliament", sampled(nested, 8));
        int deepest = 0;
        for (CompletionOutput c : out.outputs()) {
            assertEquals(FinishReason.STOP, c.finishReason(), c.text());
            JsonNode node = JSON.readTree(c.text());
            int depth = 0;
            while (node.isArray() && node.size() == 1 && node.get(0).isArray()) {
                node = node.get(0);
                depth++;
            }
            assertTrue(depth >= 1 && node.isArray() && node.size() >= 1 && node.size() <= 4, c.text());
            for (JsonNode number : node) assertTrue(number.isInt() && number.asInt() >= 1 && number.asInt() <= 999, c.text());
            deepest = Math.max(deepest, depth + 1);
        }
        assertTrue(deepest >= 2, "nesting reached " + deepest);
    }

    /**
     * A schema that refers to itself (a tree of named nodes, the root with at least one child): it is
     * followed as a grammar, and each sampled output is complete and valid at every depth.
     */
    @Test
    void recursiveSchemaOutputsAreValidAtEveryDepth() throws Exception {
        StructuredOutputs tree = StructuredOutputs.json("""
                {"$defs": {"node": {"type": "object", "properties": {
                   "name": {"enum": ["a", "b", "c"]},
                   "children": {"type": "array", "items": {"$ref": "#/$defs/node"}, "maxItems": 2}},
                  "required": ["name", "children"]}},
                 "type": "object", "properties": {
                   "name": {"enum": ["a", "b", "c"]},
                   "children": {"type": "array", "items": {"$ref": "#/$defs/node"}, "minItems": 1, "maxItems": 2}},
                 "required": ["name", "children"]}""");
        assertTrue(tree.rules().isPresent(), "a recursive schema is followed as a grammar");
        RequestOutput out = llm.generate("The European Parliament", sampled(tree, 8));
        int deepest = 0;
        for (CompletionOutput c : out.outputs()) {
            assertEquals(FinishReason.STOP, c.finishReason(), c.text());
            deepest = Math.max(deepest, validNodeDepth(JSON.readTree(c.text()), c.text()));
        }
        assertTrue(deepest >= 2, "nesting reached " + deepest);
    }

    /** The depth of a valid node (its children nodes too), failing the test where a node is not valid. */
    private static int validNodeDepth(JsonNode node, String text) {
        assertTrue(node.isObject() && Set.of("a", "b", "c").contains(node.path("name").asText()), text);
        assertTrue(node.path("children").isArray() && node.path("children").size() <= 2 && node.size() == 2, text);
        int deepest = 0;
        for (JsonNode child : node.path("children")) deepest = Math.max(deepest, validNodeDepth(child, text));
        return deepest + 1;
    }

    /**
     * A structural tag (vLLM's): free text in which "<" may only open a tag {@code <city>"Paris"</city>}.
     * With "<" favoured, sampled answers hold tags, and each "<" of each answer opens a whole one.
     */
    @Test
    void structuralTagsOpenAtTheirTriggerAndHoldTheirSchema() throws Exception {
        StructuredOutputs tags = StructuredOutputs.structuralTag(JSON.readTree("""
                {"type": "structural_tag", "triggers": ["<"],
                 "structures": [{"begin": "<city>", "schema": {"enum": ["Paris", "Rome"]}, "end": "</city>"}]}"""));
        int open = llm.tokenizer().encode("<", false)[0];
        SamplingParams params = SamplingParams.builder().temperature(1.0).n(6).seed(3L).maxTokens(60).ignoreEos(true)
                .logitBias(java.util.Map.of(open, 14f)).structuredOutputs(tags).build();
        int tagsSeen = 0;
        for (CompletionOutput c : llm.generate("The European Parliament", params).outputs()) {
            String text = c.text();
            for (int at = text.indexOf('<'); at >= 0; at = text.indexOf('<', at + 1)) {
                var whole = java.util.regex.Pattern.compile("<city>\"(Paris|Rome)\"</city>").matcher(text).region(at, text.length());
                if (whole.lookingAt()) {
                    tagsSeen++;
                    at = whole.end() - 1;
                } else {
                    // Cut by max_tokens inside a tag: what is there is the tag's beginning.
                    assertTrue("<city>\"Paris\"</city>".startsWith(text.substring(at)) || "<city>\"Rome\"</city>".startsWith(text.substring(at)),
                            "a '<' that opens no tag at " + at + ": " + text);
                    break;
                }
            }
        }
        assertTrue(tagsSeen >= 3, tagsSeen + " tags");
    }

    /** The engine keeps a grammar per structured output: equal rules are one grammar, whatever their text's spacing and comments. */
    @Test
    void grammarsAreEqualByTheirRules() {
        StructuredOutputs plain = StructuredOutputs.grammar("root ::= \"a\" x\nx ::= [0-9]");
        assertEquals(plain, StructuredOutputs.grammar("root ::=   \"a\"   x   # a comment\n\nx ::= [0-9]\n"));
        assertEquals(plain.hashCode(), StructuredOutputs.grammar("root ::= \"a\" x\nx ::= [0-9]").hashCode());
        assertNotEquals(plain, StructuredOutputs.grammar("root ::= \"a\" x\nx ::= [0-8]"));
        StructuredOutputs literal = StructuredOutputs.grammar("root ::= \"a\"");
        assertNotEquals(literal, StructuredOutputs.regex(literal.pattern().replace("\n", "")), "a regex is not a grammar of the same text");
    }

    @Test
    void unusableGrammarsAreRefusedNamingTheProblem() {
        var undefined = assertThrows(InvalidRequestException.class, () -> StructuredOutputs.grammar("root ::= \"[\" item \"]\""));
        assertEquals("structuredOutputs", undefined.field());
        assertTrue(undefined.getMessage().contains("the rule 'item' is not defined"), undefined.getMessage());
        var leftRecursive = assertThrows(InvalidRequestException.class,
                () -> StructuredOutputs.grammar("root ::= root \"a\" | \"a\""));
        assertTrue(leftRecursive.getMessage().contains("left-recursive"), leftRecursive.getMessage());
        var syntax = assertThrows(InvalidRequestException.class, () -> StructuredOutputs.grammar("root ::= (\"a\""));
        assertTrue(syntax.getMessage().contains("grammar line 1, column 14: unclosed '('"), syntax.getMessage());
    }

    @Test
    void unusableSchemasAreRefusedNamingTheField() {
        var notJson = assertThrows(InvalidRequestException.class, () -> StructuredOutputs.json("{type: object"));
        assertEquals("structuredOutputs", notJson.field());
        var selfFirst = assertThrows(InvalidRequestException.class, () -> StructuredOutputs.json(
                "{\"$defs\": {\"a\": {\"anyOf\": [{\"$ref\": \"#/$defs/a\"}, {\"type\": \"string\"}]}}, \"$ref\": \"#/$defs/a\"}"));
        assertTrue(selfFirst.getMessage().contains("left-recursive") && selfFirst.getMessage().endsWith(
                "(a $ref that comes back to itself before any character of the document: an anyOf or allOf that names itself)"), selfFirst.getMessage());
        var nowhere = assertThrows(InvalidRequestException.class, () -> StructuredOutputs.json("{\"$ref\": \"#/$defs/n\"}"));
        assertTrue(nowhere.getMessage().contains("the $ref '#/$defs/n' at # names nothing in the schema"), nowhere.getMessage());
        assertThrows(InvalidRequestException.class, () -> StructuredOutputs.regex("(a"));
    }
}
