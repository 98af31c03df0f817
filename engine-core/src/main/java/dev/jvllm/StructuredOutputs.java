package dev.jvllm;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.jvllm.structured.JsonSchemaRegex;
import dev.jvllm.structured.Regex;

import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * What a request's output must be, as vLLM's {@code StructuredOutputsParams}: a JSON document
 * valid against a schema ({@link #json}), any JSON object ({@link #jsonObject}), a text matching a
 * regular expression ({@link #regex}) or one of a list of texts ({@link #choice}). At each step only
 * the tokens that keep the output on that course can be drawn, and the end-of-sequence token only
 * once it is complete. Each is turned into a regular expression ({@link #pattern}), checked when made.
 */
public final class StructuredOutputs {

    /** How deep the objects and arrays of JSON mode may nest. */
    private static final int JSON_OBJECT_DEPTH = 4;
    private static final ObjectMapper JSON = new ObjectMapper();
    /**
     * A JSON output may open with one space: SentencePiece vocabularies (Llama 2, Mistral) write a
     * word after the prompt with its space, as in {@code ▁{"}, and JSON allows it.
     */
    private static final String LEADING_SPACE = "[ ]?";

    private final String kind;
    private final String pattern;

    private StructuredOutputs(String kind, String pattern) {
        this.kind = kind;
        try {
            Regex.compile(pattern);
        } catch (IllegalArgumentException e) {
            throw new InvalidRequestException("structuredOutputs", "the " + kind + " cannot be used: " + e.getMessage());
        }
        this.pattern = pattern;
    }

    /**
     * A JSON document valid against {@code schema} (its properties in the schema's order, at most
     * one space between tokens and before the document).
     *
     * @throws InvalidRequestException naming what of the schema is not supported (recursive
     *                                 references, string patterns with lookaround or back-references, bounds
     *                                 no number meets) or not JSON
     */
    public static StructuredOutputs json(String schema) {
        Objects.requireNonNull(schema, "schema");
        try {
            return json(JSON.readTree(schema));
        } catch (JsonProcessingException e) {
            throw new InvalidRequestException("structuredOutputs", "the JSON schema is not JSON: " + e.getOriginalMessage());
        }
    }

    /** {@link #json(String)} for a parsed schema. */
    public static StructuredOutputs json(JsonNode schema) {
        try {
            return new StructuredOutputs("JSON schema", LEADING_SPACE + JsonSchemaRegex.of(Objects.requireNonNull(schema, "schema")));
        } catch (IllegalArgumentException e) {
            throw new InvalidRequestException("structuredOutputs", "the JSON schema cannot be used: " + e.getMessage());
        }
    }

    /**
     * A JSON list of one or more tool calls, each {@code {"name": ..., "parameters": ...}} with the
     * parameters the named function's schema allows: vLLM's {@code tool_choice} "required".
     *
     * @param parametersByName each function's parameters schema, by its name
     */
    public static StructuredOutputs toolCalls(Map<String, JsonNode> parametersByName) {
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
        return json(schema);
    }

    /** Any JSON object, nested up to four levels (OpenAI's {@code response_format} "json_object"). */
    public static StructuredOutputs jsonObject() {
        return new StructuredOutputs("JSON object", LEADING_SPACE + JsonSchemaRegex.anyJsonObject(JSON_OBJECT_DEPTH));
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

    /** The regular expression the output must match whole. */
    public String pattern() {
        return pattern;
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof StructuredOutputs s && s.pattern.equals(pattern);
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
