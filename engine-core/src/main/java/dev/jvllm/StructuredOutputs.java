package dev.jvllm;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.jvllm.structured.GbnfGrammar;
import dev.jvllm.structured.GrammarRules;
import dev.jvllm.structured.JsonSchemaRegex;
import dev.jvllm.structured.Pushdown;
import dev.jvllm.structured.StructuralTag;
import dev.jvllm.structured.Regex;

import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;

/**
 * What a request's output must be, as vLLM's {@code StructuredOutputsParams}: a JSON document
 * valid against a schema ({@link #json}), any JSON object ({@link #jsonObject}), a text matching a
 * regular expression ({@link #regex}), one of a list of texts ({@link #choice}), a sentence of a
 * context-free grammar ({@link #grammar}) or free text with tags ({@link #structuralTag}). At each step only the tokens that keep the output on that
 * course can be drawn, and the end-of-sequence token only once it is complete. Each is turned into a
 * regular expression or a grammar's rules ({@link #pattern}), checked when made.
 */
public final class StructuredOutputs {

    private static final ObjectMapper JSON = new ObjectMapper();
    /**
     * A JSON output may open with one space: SentencePiece vocabularies (Llama 2, Mistral) write a
     * word after the prompt with its space, as in {@code ▁{"}, and JSON allows it.
     */
    private static final String LEADING_SPACE = "[ ]?";

    private final String kind;
    private final String pattern;
    private final GrammarRules rules;

    private StructuredOutputs(String kind, String pattern) {
        this.kind = kind;
        try {
            Regex.compile(pattern);
        } catch (IllegalArgumentException e) {
            throw new InvalidRequestException("structuredOutputs", "the " + kind + " cannot be used: " + e.getMessage());
        }
        this.pattern = pattern;
        this.rules = null;
    }

    private StructuredOutputs(String kind, GrammarRules rules, String leftRecursionHint) {
        this.kind = kind;
        try {
            new Pushdown(rules);
        } catch (IllegalArgumentException e) {
            String hint = e.getMessage().contains("left-recursive") ? leftRecursionHint : "";
            throw new InvalidRequestException("structuredOutputs", "the " + kind + " cannot be used: " + e.getMessage() + hint);
        }
        this.pattern = rules.toString();
        this.rules = rules;
    }

    /** Where a JSON output may put whitespace. */
    public enum JsonWhitespace {
        /** At most one space between tokens and before the document (the default). */
        ONE_SPACE,
        /** None: compact JSON, as vLLM's {@code disable_any_whitespace}. */
        NONE,
        /**
         * Any run of JSON's whitespace (space, tab, line feed, carriage return) between tokens, as
         * vLLM (xgrammar's any_whitespace) allows by default: a model may lay the document out over
         * lines and indent it; before the document at most one space, as ONE_SPACE. A model that
         * keeps writing whitespace inside the document then runs on until its token limit, which the
         * other two rule out.
         */
        ANY;

        /** The pattern between two tokens. */
        String betweenTokens() {
            return switch (this) {
                case ONE_SPACE -> JsonSchemaRegex.ONE_SPACE;
                case NONE -> JsonSchemaRegex.NO_SPACE;
                case ANY -> JsonSchemaRegex.ANY_WHITESPACE;
            };
        }

        /** The pattern before the document: one space (see LEADING_SPACE), none for NONE. */
        String beforeDocument() {
            return this == NONE ? "" : LEADING_SPACE;
        }
    }

    /**
     * A JSON document valid against {@code schema} (its properties in the schema's order, at most
     * one space between tokens and before the document). A schema that refers to itself (a tree, a
     * linked list, through {@code $ref}) is followed as a grammar, nested as deep as the output goes.
     *
     * @throws InvalidRequestException naming what of the schema is not supported (string patterns with
     *                                 lookaround or back-references, bounds no number meets) or not JSON
     */
    public static StructuredOutputs json(String schema) {
        return json(schema, JsonWhitespace.ONE_SPACE);
    }

    /** {@link #json(String)} with the whitespace given. */
    public static StructuredOutputs json(String schema, JsonWhitespace whitespace) {
        Objects.requireNonNull(schema, "schema");
        try {
            return json(JSON.readTree(schema), whitespace);
        } catch (JsonProcessingException e) {
            throw new InvalidRequestException("structuredOutputs", "the JSON schema is not JSON: " + e.getOriginalMessage());
        }
    }

    /** {@link #json(String)} for a parsed schema. */
    public static StructuredOutputs json(JsonNode schema) {
        return json(schema, JsonWhitespace.ONE_SPACE);
    }

    /** {@link #json(String, JsonWhitespace)} for a parsed schema. */
    public static StructuredOutputs json(JsonNode schema, JsonWhitespace whitespace) {
        String start = Objects.requireNonNull(whitespace, "whitespace").beforeDocument();
        GrammarRules rules;
        try {
            rules = JsonSchemaRegex.rules(Objects.requireNonNull(schema, "schema"), whitespace.betweenTokens());
        } catch (IllegalArgumentException e) {
            throw new InvalidRequestException("structuredOutputs", "the JSON schema cannot be used: " + e.getMessage());
        }
        if (rules.rules().size() == 1) return new StructuredOutputs("JSON schema", start + rules.rules().get("root"));
        // A recursive schema: a grammar, its root rule opening as a document does.
        Map<String, String> withSpace = new java.util.LinkedHashMap<>(rules.rules());
        withSpace.put("root", start + rules.rules().get("root"));
        return new StructuredOutputs("JSON schema", new GrammarRules(withSpace),
                " (a $ref that comes back to itself before any character of the document: an anyOf or allOf that names itself)");
    }

    /**
     * A JSON list of one or more tool calls, each {@code {"name": ..., "parameters": ...}} with the
     * parameters the named function's schema allows: vLLM's {@code tool_choice} "required".
     *
     * @param parametersByName each function's parameters schema, by its name
     */
    public static StructuredOutputs toolCalls(Map<String, JsonNode> parametersByName) {
        return toolCalls(parametersByName, JsonWhitespace.ONE_SPACE);
    }

    /** {@link #toolCalls(Map)} with the whitespace given. */
    public static StructuredOutputs toolCalls(Map<String, JsonNode> parametersByName, JsonWhitespace whitespace) {
        var anyOf = JSON.createArrayNode();
        parametersByName.forEach((name, parameters) -> {
            var call = anyOf.addObject().put("type", "object");
            var properties = call.putObject("properties");
            properties.putObject("name").putArray("enum").add(name);
            properties.set("parameters", parameters);
            call.putArray("required").add("name").add("parameters");
        });
        var schema = JSON.createObjectNode().put("type", "array").put("minItems", 1);
        schema.putObject("items").set("anyOf", anyOf);
        return json(schema, whitespace);
    }

    /** Any JSON object, nested to any depth (OpenAI's {@code response_format} "json_object"), followed as a grammar. */
    public static StructuredOutputs jsonObject() {
        return jsonObject(JsonWhitespace.ONE_SPACE);
    }

    /** {@link #jsonObject()} with the whitespace given. */
    public static StructuredOutputs jsonObject(JsonWhitespace whitespace) {
        Objects.requireNonNull(whitespace, "whitespace");
        return new StructuredOutputs("JSON object", JsonSchemaRegex.anyJsonObjectRules(whitespace.beforeDocument(), whitespace.betweenTokens()), "");
    }

    /** A text the regular expression matches whole (the syntax {@link Regex} reads). */
    public static StructuredOutputs regex(String regex) {
        return new StructuredOutputs("regex", Objects.requireNonNull(regex, "regex"));
    }

    /** Exactly one of {@code choices}. */
    public static StructuredOutputs choice(List<String> choices) {
        if (choices.isEmpty()) throw new InvalidRequestException("structuredOutputs", "the choice list is empty");
        StringBuilder b = new StringBuilder();
        for (String choice : choices) {
            if (!b.isEmpty()) b.append('|');
            b.append("(?:").append(Regex.quote(choice)).append(')');
        }
        return new StructuredOutputs("choice", b.toString());
    }

    /**
     * A sentence of a context-free grammar written in GBNF, the EBNF of llama.cpp and xgrammar that
     * vLLM's {@code grammar} structured output takes ({@link GbnfGrammar}): rules {@code name ::= ...}
     * starting at {@code root}, with literals, character classes, groups, alternation and repetition.
     * Unlike a regex, a grammar may nest without bound (balanced brackets, expressions, JSON).
     *
     * @throws InvalidRequestException naming the line and column of a syntax error, a rule called but
     *                                 not defined, a missing {@code root}, or a left-recursive rule
     *                                 ({@code expr ::= expr "+" term}; write it {@code expr ::= term ("+" term)*})
     */
    public static StructuredOutputs grammar(String grammar) {
        Objects.requireNonNull(grammar, "grammar");
        try {
            return new StructuredOutputs("grammar", GbnfGrammar.parse(grammar), ": write the repetition with '*' or '+'");
        } catch (IllegalArgumentException e) {
            throw new InvalidRequestException("structuredOutputs", "the grammar cannot be used: " + e.getMessage());
        }
    }

    /**
     * vLLM's structural tag: free text in which each of {@code triggers} opens a tag, one of
     * {@code structures} whose begin starts with it, holding a JSON document valid against its schema
     * and closed by its end. Free text holds no trigger but those that open tags; the output ends in
     * free text. For tool calls a model writes between prose, as {@code <function=get_weather>{...}</function>}.
     *
     * @throws InvalidRequestException naming a structure whose begin starts with no trigger, an empty
     *                                 list or trigger, or a schema that cannot be followed
     */
    public static StructuredOutputs structuralTag(List<StructuralTag.Structure> structures, List<String> triggers) {
        try {
            return new StructuredOutputs("structural tag", StructuralTag.rules(List.copyOf(structures), List.copyOf(triggers)), "");
        } catch (IllegalArgumentException | NullPointerException e) {
            throw new InvalidRequestException("structuredOutputs", "the structural tag cannot be used: " + e.getMessage());
        }
    }

    /**
     * {@link #structuralTag(List, List)} from vLLM's JSON form:
     * {@code {"type": "structural_tag", "structures": [{"begin": ..., "schema": {...}, "end": ...}], "triggers": [...]}}.
     */
    public static StructuredOutputs structuralTag(JsonNode tag) {
        Objects.requireNonNull(tag, "tag");
        JsonNode structures = tag.path("structures"), triggers = tag.path("triggers");
        if (!structures.isArray() || !triggers.isArray()) {
            throw new InvalidRequestException("structuredOutputs", "a structural tag needs 'structures' and 'triggers', both lists");
        }
        List<StructuralTag.Structure> parsed = new java.util.ArrayList<>();
        for (JsonNode s : structures) {
            if (!s.path("begin").isTextual() || !s.path("end").isTextual() || !s.path("schema").isObject()) {
                throw new InvalidRequestException("structuredOutputs", "each structure of a structural tag needs 'begin' and 'end' (strings) and "
                        + "'schema' (an object)");
            }
            parsed.add(new StructuralTag.Structure(s.get("begin").asText(), s.get("schema"), s.get("end").asText()));
        }
        List<String> words = new java.util.ArrayList<>();
        for (JsonNode t : triggers) {
            if (!t.isTextual()) throw new InvalidRequestException("structuredOutputs", "a structural tag's triggers must be strings");
            words.add(t.asText());
        }
        return structuralTag(parsed, words);
    }

    /** The regular expression the output must match whole; for a grammar, its rules, one {@code name ::= pattern} a line. */
    public String pattern() {
        return pattern;
    }

    /** A grammar's rules; empty for the kinds that are a regular expression. */
    public Optional<GrammarRules> rules() {
        return Optional.ofNullable(rules);
    }

    @Override
    public boolean equals(Object o) {
        if (!(o instanceof StructuredOutputs s) || (s.rules == null) != (rules == null)) return false;
        // A grammar by its rules in order, not by their text: a literal holding a line break could make two texts alike.
        return rules == null ? s.pattern.equals(pattern) : s.rules.names().equals(rules.names()) && s.rules.equals(rules);
    }

    @Override
    public int hashCode() {
        return pattern.hashCode();
    }

    @Override
    public String toString() {
        return "StructuredOutputs[" + kind + "]";
    }
}
