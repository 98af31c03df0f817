package dev.jvllm.config;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;

import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.OptionalDouble;
import java.util.OptionalInt;

/**
 * Typed reads of the fields of one JSON object in a config file. An absent or {@code null} field
 * reads as empty; a field of the wrong type is a {@link ConfigException} naming it and the file.
 *
 * @param node   the JSON object
 * @param source the file, for messages
 * @param path   where the object sits in the file ("" at the top, "rope_scaling." inside it), for messages
 */
record ConfigFields(JsonNode node, String source, String path) {

    ConfigFields(JsonNode node, String source) {
        this(node, source, "");
    }

    /** Whether the field is present and not {@code null}. */
    boolean has(String field) {
        return present(field) != null;
    }

    OptionalInt integer(String field) {
        JsonNode n = present(field);
        if (n == null) {
            return OptionalInt.empty();
        }
        return OptionalInt.of(asInt(field, n));
    }

    OptionalDouble number(String field) {
        JsonNode n = present(field);
        if (n == null) {
            return OptionalDouble.empty();
        }
        if (!n.isNumber()) {
            throw wrongType(field, "a number", n);
        }
        return OptionalDouble.of(n.doubleValue());
    }

    Optional<String> text(String field) {
        JsonNode n = present(field);
        if (n == null) {
            return Optional.empty();
        }
        if (!n.isTextual()) {
            throw wrongType(field, "a string", n);
        }
        return Optional.of(n.textValue());
    }

    /** A field holding one integer or a list of them, as token-id fields do. */
    List<Integer> integers(String field) {
        JsonNode n = present(field);
        if (n == null) {
            return List.of();
        }
        if (!n.isArray()) {
            return List.of(asInt(field, n));
        }
        List<Integer> values = new ArrayList<>();
        n.forEach(element -> values.add(asInt(field, element)));
        return List.copyOf(values);
    }

    /** A nested object, whose fields are then named {@code field.name} in messages. */
    Optional<ConfigFields> object(String field) {
        JsonNode n = present(field);
        if (n == null) {
            return Optional.empty();
        }
        if (!n.isObject()) {
            throw wrongType(field, "an object", n);
        }
        return Optional.of(new ConfigFields(n, source, path + field + "."));
    }

    /** An object with no fields, standing for an absent nested object {@code field}. */
    ConfigFields absent(String field) {
        return new ConfigFields(JsonNodeFactory.instance.objectNode(), source, path + field + ".");
    }

    ConfigException invalid(String field, String problem) {
        return new ConfigException(source + ": field '" + path + field + "' " + problem);
    }

    private int asInt(String field, JsonNode n) {
        if (!n.isIntegralNumber() || !n.canConvertToInt()) {
            throw wrongType(field, "an integer", n);
        }
        return n.intValue();
    }

    private ConfigException wrongType(String field, String expected, JsonNode got) {
        return invalid(field, "must be " + expected + ", got " + got);
    }

    private JsonNode present(String field) {
        JsonNode n = node.get(field);
        return n == null || n.isNull() ? null : n;
    }
}
