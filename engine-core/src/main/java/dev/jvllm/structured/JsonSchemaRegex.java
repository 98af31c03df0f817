package dev.jvllm.structured;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.util.ArrayList;
import java.util.HashSet;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * A JSON schema as a regular expression over the JSON texts it accepts, as outlines builds one:
 * objects with their properties in the schema's order (optional ones may be left out, nothing else
 * may be added), arrays of {@code items} within {@code minItems}/{@code maxItems}, strings (with
 * {@code minLength}/{@code maxLength}, a {@code pattern}, a {@code format} of date-time, date, time,
 * uuid, ipv4 or email, {@code enum}, {@code const}), integers and numbers (with their bounds), booleans,
 * null, {@code enum}, {@code const}, {@code anyOf}/{@code oneOf}, type lists, and {@code $ref} to
 * {@code #/$defs/...}, {@code #/definitions/...} or other local paths. A {@code $ref} met again
 * inside itself (a tree, a linked list) cannot be a regular expression: {@link #rules} then makes it
 * a grammar rule that calls itself. Between tokens the whitespace a pattern allows: {@link
 * #ANY_WHITESPACE} (vLLM's default), {@link #ONE_SPACE} or {@link #NO_SPACE} (vLLM's {@code
 * disable_any_whitespace}). {@link #anyJson} is any JSON value nested up to a depth.
 */
public final class JsonSchemaRegex {

    private static final ObjectMapper JSON = new ObjectMapper();
    /** Between two tokens: at most one space. */
    public static final String ONE_SPACE = "[ ]?";
    /** Between two tokens: nothing (compact JSON). */
    public static final String NO_SPACE = "";
    /** Between two tokens: any run of JSON's whitespace (RFC 8259: space, tab, line feed, carriage return). */
    public static final String ANY_WHITESPACE = "[ \\t\\n\\r]*";
    static final String STRING_CHAR = "(?:[^\"\\\\\\x00-\\x1f]|\\\\[\"\\\\/bfnrt]|\\\\u[0-9a-fA-F]{4})";
    static final String STRING = "\"" + STRING_CHAR + "*\"";
    static final String INTEGER = "-?(?:0|[1-9][0-9]*)";
    /** A number, its fraction at most {@link NumberRange#MAX_FRACTION_DIGITS} digits long and its exponent at most 3. */
    static final String NUMBER = INTEGER + "(?:\\.[0-9]{1," + NumberRange.MAX_FRACTION_DIGITS + "})?(?:[eE][+-]?[0-9]{1,3})?";
    static final String BOOLEAN = "(?:true|false)";
    static final String NULL = "null";
    private static final int MAX_REF_DEPTH = 16;
    /** Schemas nested deeper than this are refused (each level is a recursive call, and a larger regex). */
    private static final int MAX_DEPTH = 32;

    private final JsonNode root;
    private final Set<String> refsInUse = new HashSet<>();
    /** The recursive {@code $ref}s met so far, each with its rule's name (made rules in order). */
    private final Map<String, String> ruleOfRef = new java.util.LinkedHashMap<>();
    private int depth;

    private final String ws;

    private JsonSchemaRegex(JsonNode root, String betweenTokens) {
        this.root = root;
        // grouped, so that an alternation in the pattern stays between its two tokens
        this.ws = betweenTokens.isEmpty() ? "" : "(?:" + betweenTokens + ")";
    }

    /**
     * The regex of {@code schema}.
     *
     * @throws IllegalArgumentException naming the part of the schema it cannot express
     */
    public static String of(JsonNode schema) {
        GrammarRules rules = rules(schema, ONE_SPACE);
        if (rules.rules().size() > 1) {
            throw new IllegalArgumentException("the schema is recursive (" + String.join(", ", rules.names().subList(1, rules.names().size()))
                    + "), which a regular expression cannot express");
        }
        return rules.rules().get("root");
    }

    /**
     * The grammar of {@code schema}: one rule, {@code root}, where nothing in it is recursive (its
     * pattern is then a plain regex); otherwise also a rule for each {@code $ref} met inside itself,
     * which calls itself there.
     *
     * @throws IllegalArgumentException naming the part of the schema it cannot express
     */
    public static GrammarRules rules(JsonNode schema) {
        return rules(schema, ONE_SPACE);
    }

    /** {@link #rules(JsonNode)} with {@code betweenTokens} (a pattern, such as {@link #NO_SPACE}) between tokens. */
    public static GrammarRules rules(JsonNode schema, String betweenTokens) {
        JsonSchemaRegex builder = new JsonSchemaRegex(schema, betweenTokens);
        Map<String, String> rules = new java.util.LinkedHashMap<>();
        builder.refsInUse.add("#");
        rules.put("root", builder.value(schema, "#"));
        builder.refsInUse.remove("#");
        // Each recursive $ref's rule is its target written once more, now calling the rules of the $refs met inside it.
        for (int made = 0; made < builder.ruleOfRef.size(); made++) {
            if (made >= GrammarRules.MAX_RULES) throw new IllegalArgumentException("the schema needs more than " + GrammarRules.MAX_RULES + " rules");
            String ref = new ArrayList<>(builder.ruleOfRef.keySet()).get(made);
            builder.refsInUse.add(ref);
            rules.put(builder.ruleOfRef.get(ref), builder.value(builder.target(ref, ref), ref));
            builder.refsInUse.remove(ref);
        }
        return new GrammarRules(rules);
    }

    /**
     * Any JSON object nested to any depth (JSON mode), as grammar rules: {@code root} an object,
     * written as the schemas' documents are (at most one space between tokens), opening with {@code
     * start} (a pattern; empty for none).
     */
    public static GrammarRules anyJsonObjectRules(String start) {
        return anyJsonObjectRules(start, ONE_SPACE);
    }

    /** {@link #anyJsonObjectRules(String)} with {@code betweenTokens} (a pattern) between tokens. */
    public static GrammarRules anyJsonObjectRules(String start, String betweenTokens) {
        JsonSchemaRegex builder = new JsonSchemaRegex(null, betweenTokens);
        String value = "(?:" + STRING + "|" + NUMBER + "|" + BOOLEAN + "|" + NULL + "|" + GrammarRules.call("object") + "|"
                + GrammarRules.call("array") + ")";
        Map<String, String> rules = new java.util.LinkedHashMap<>();
        rules.put("root", start + GrammarRules.call("object"));
        rules.put("object", builder.object(GrammarRules.call("value")));
        rules.put("array", builder.array(GrammarRules.call("value"), 0, -1));
        rules.put("value", value);
        return new GrammarRules(rules);
    }

    /** Any JSON value nested up to {@code depth} levels of objects and arrays (at most one space between tokens). */
    public static String anyJson(int depth) {
        return new JsonSchemaRegex(null, ONE_SPACE).anyValue(depth);
    }

    private String anyValue(int depth) {
        String scalar = "(?:" + STRING + "|" + NUMBER + "|" + BOOLEAN + "|" + NULL + ")";
        if (depth <= 0) return scalar;
        String inner = anyValue(depth - 1);
        return "(?:" + scalar + "|" + object(inner) + "|" + array(inner, 0, -1) + ")";
    }

    private String object(String value) {
        String member = STRING + ws + ":" + ws + value;
        return "\\{" + ws + "(?:" + member + "(?:" + ws + "," + ws + member + ")*)?" + ws + "\\}";
    }

    private String array(String item, int min, int max) {
        String sep = ws + "," + ws;
        String body;
        if (max == 0) {
            body = "";
        } else if (min == 0) {
            body = "(?:" + item + "(?:" + sep + item + ")" + bounds(0, max < 0 ? -1 : max - 1) + ")?";
        } else {
            body = item + "(?:" + sep + item + ")" + bounds(min - 1, max < 0 ? -1 : max - 1);
        }
        return "\\[" + ws + body + ws + "\\]";
    }

    private static String bounds(int min, int max) {
        if (min == 0 && max < 0) return "*";
        if (max < 0) return "{" + min + ",}";
        return "{" + min + "," + max + "}";
    }

    private String value(JsonNode schema, String where) {
        if (++depth > MAX_DEPTH) throw new IllegalArgumentException("the schema nests deeper than " + MAX_DEPTH + " levels at " + where);
        try {
            return valueAtDepth(schema, where);
        } finally {
            depth--;
        }
    }

    private String valueAtDepth(JsonNode schema, String where) {
        if (schema.isBoolean()) {
            if (schema.asBoolean()) return anyValue(3);
            throw new IllegalArgumentException("the schema at " + where + " is false: nothing matches it");
        }
        if (!schema.isObject()) throw new IllegalArgumentException("the schema at " + where + " is not an object");
        refuseUnfollowed(schema, where);
        if (schema.has("$ref")) return ref(schema.get("$ref").asText(), where);
        if (schema.has("const")) return literal(schema.get("const"));
        if (schema.has("enum")) {
            List<String> options = new ArrayList<>();
            for (JsonNode option : schema.get("enum")) options.add(literal(option));
            if (options.isEmpty()) throw new IllegalArgumentException("the enum at " + where + " is empty");
            return "(?:" + String.join("|", options) + ")";
        }
        for (String key : new String[]{"anyOf", "oneOf"}) {
            if (schema.has(key)) {
                List<String> options = new ArrayList<>();
                int i = 0;
                for (JsonNode option : schema.get(key)) options.add(value(option, where + "/" + key + "/" + i++));
                return "(?:" + String.join("|", options) + ")";
            }
        }
        if (schema.has("allOf") && schema.get("allOf").size() == 1) return value(schema.get("allOf").get(0), where + "/allOf/0");
        JsonNode type = schema.get("type");
        if (type == null) {
            if (schema.has("properties")) return object(schema, where);
            if (schema.has("items") || schema.has("prefixItems")) return arrayOf(schema, where);
            return anyValue(3);
        }
        if (type.isArray()) {
            List<String> options = new ArrayList<>();
            for (JsonNode t : type) options.add(typed(t.asText(), schema, where));
            return "(?:" + String.join("|", options) + ")";
        }
        return typed(type.asText(), schema, where);
    }

    private String typed(String type, JsonNode schema, String where) {
        return switch (type) {
            case "string" -> string(schema, where);
            case "integer" -> integer(schema, where);
            case "number" -> number(schema, where);
            case "boolean" -> BOOLEAN;
            case "null" -> NULL;
            case "array" -> arrayOf(schema, where);
            case "object" -> object(schema, where);
            default -> throw new IllegalArgumentException("the type '" + type + "' at " + where + " is not a JSON schema type");
        };
    }

    /** An integer within the schema's minimum and maximum (inclusive or exclusive), each optional. */
    private static String integer(JsonNode schema, String where) {
        Long min = bound(schema, "minimum", "exclusiveMinimum", 1, where), max = bound(schema, "maximum", "exclusiveMaximum", -1, where);
        if (min == null && max == null) return INTEGER;
        if (min != null && max != null && min > max) throw new IllegalArgumentException("the integer at " + where + " has minimum above maximum");
        List<String> parts = new ArrayList<>();
        // Negative values, written as '-' and their magnitude in [low, high].
        if (min == null || min < 0) {
            long low = max != null && max < 0 ? -max : 1;
            parts.add("-" + (min == null ? magnitudeFrom(low) : magnitudes(low, -min)));
        }
        if (max == null || max >= 0) {
            long low = min == null ? 0 : Math.max(0, min);
            parts.add(max == null ? magnitudeFrom(low) : magnitudes(low, max));
        }
        return "(?:" + String.join("|", parts) + ")";
    }

    /**
     * A number: without bounds, any; within {@code minimum}/{@code maximum} and their exclusive forms
     * (numbers, or draft 4's booleans), a decimal without an exponent in the range ({@link NumberRange}).
     */
    private static String number(JsonNode schema, String where) {
        boolean bounded = schema.has("minimum") || schema.has("maximum") || schema.has("exclusiveMinimum") || schema.has("exclusiveMaximum");
        if (!bounded) return NUMBER;
        java.math.BigDecimal low = null, high = null;
        boolean lowStrict = false, highStrict = false;
        JsonNode minimum = schema.get("minimum"), maximum = schema.get("maximum");
        JsonNode exclusiveMinimum = schema.get("exclusiveMinimum"), exclusiveMaximum = schema.get("exclusiveMaximum");
        if (minimum != null) {
            low = decimal(minimum, "minimum", where);
            lowStrict = exclusiveMinimum != null && exclusiveMinimum.isBoolean() && exclusiveMinimum.booleanValue();
        }
        if (exclusiveMinimum != null && exclusiveMinimum.isNumber()) {
            java.math.BigDecimal e = exclusiveMinimum.decimalValue();
            if (low == null || e.compareTo(low) >= 0) {
                low = e;
                lowStrict = true;
            }
        }
        if (maximum != null) {
            high = decimal(maximum, "maximum", where);
            highStrict = exclusiveMaximum != null && exclusiveMaximum.isBoolean() && exclusiveMaximum.booleanValue();
        }
        if (exclusiveMaximum != null && exclusiveMaximum.isNumber()) {
            java.math.BigDecimal e = exclusiveMaximum.decimalValue();
            if (high == null || e.compareTo(high) <= 0) {
                high = e;
                highStrict = true;
            }
        }
        return NumberRange.of(low, lowStrict, high, highStrict, where);
    }

    private static java.math.BigDecimal decimal(JsonNode bound, String keyword, String where) {
        if (!bound.isNumber()) throw new IllegalArgumentException("the " + keyword + " at " + where + " is not a number");
        return bound.decimalValue();
    }

    /** An integer bound: the inclusive keyword, or the exclusive one moved by {@code step}; null for none. */
    private static Long bound(JsonNode schema, String inclusive, String exclusive, int step, String where) {
        JsonNode in = schema.get(inclusive), ex = schema.get(exclusive);
        Long result = null;
        if (in != null && in.isNumber()) {
            result = (long) Math.ceil(step > 0 ? in.asDouble() : -in.asDouble()) * (step > 0 ? 1 : -1);
            // Draft 4's boolean form: the inclusive keyword's value itself is excluded.
            if (ex != null && ex.isBoolean() && ex.booleanValue() && in.asDouble() == Math.rint(in.asDouble())) result += step;
        }
        if (ex != null && ex.isNumber()) {
            long e = (long) (step > 0 ? Math.floor(ex.asDouble()) + 1 : Math.ceil(ex.asDouble()) - 1);
            result = result == null ? e : step > 0 ? Math.max(result, e) : Math.min(result, e);
        }
        if (result != null && Math.abs(result) > 1_000_000_000_000_000L) {
            throw new IllegalArgumentException("the integer bound at " + where + " is out of range");
        }
        return result;
    }

    /** Magnitudes (no sign, no leading zeros) in [low, high], low ≥ 0: the digit-range split of to-regex-range. */
    static String magnitudes(long low, long high) {
        List<String> parts = new ArrayList<>();
        long start = low;
        for (long stop : stops(low, high)) {
            parts.add(rangePattern(start, stop));
            start = stop + 1;
        }
        return parts.size() == 1 ? parts.getFirst() : "(?:" + String.join("|", parts) + ")";
    }

    /** Magnitudes from {@code low} up, without bound. */
    static String magnitudeFrom(long low) {
        if (low == 0) return "(?:0|[1-9][0-9]*)";
        int digits = Long.toString(low).length();
        long top = (long) Math.pow(10, digits) - 1;
        return "(?:" + magnitudes(low, top) + "|[1-9][0-9]{" + digits + ",})";
    }

    /** The ends of the sub-ranges of [low, high] whose numbers share a length and differ in one run of digits. */
    private static java.util.TreeSet<Long> stops(long low, long high) {
        java.util.TreeSet<Long> stops = new java.util.TreeSet<>();
        stops.add(high);
        for (int nines = 1; ; nines++) {
            long stop = fillByNines(low, nines);
            if (stop < low || stop >= high) break;
            stops.add(stop);
        }
        for (int zeros = 1; ; zeros++) {
            long stop = fillByZeros(high + 1, zeros) - 1;
            if (stop <= low || stop > high) break;
            stops.add(stop);
        }
        return stops;
    }

    private static long fillByNines(long n, int count) {
        String s = Long.toString(n);
        if (count > s.length()) return Long.parseLong("9".repeat(count));
        return Long.parseLong(s.substring(0, s.length() - count) + "9".repeat(count));
    }

    private static long fillByZeros(long n, int count) {
        long p = (long) Math.pow(10, count);
        return n - n % p;
    }

    /** The numbers from start to stop (same length), as digits, classes and a run of [0-9]. */
    private static String rangePattern(long start, long stop) {
        String a = Long.toString(start), b = Long.toString(stop);
        StringBuilder pattern = new StringBuilder();
        int any = 0;
        for (int i = 0; i < a.length(); i++) {
            char x = a.charAt(i), y = b.charAt(i);
            if (x == y) pattern.append(x);
            else if (x == '0' && y == '9') any++;
            else pattern.append('[').append(x).append('-').append(y).append(']');
        }
        if (any > 0) pattern.append("[0-9]").append(any > 1 ? "{" + any + "}" : "");
        return pattern.toString();
    }

    /**
     * A string: of {@code minLength} to {@code maxLength} characters, or matching its {@code pattern}
     * ({@link JsonStringPattern}), or in one of the {@code format}s below; other formats are
     * annotations, as JSON Schema has them by default.
     */
    private String string(JsonNode schema, String where) {
        boolean lengths = schema.has("minLength") || schema.has("maxLength");
        if (schema.has("pattern")) {
            if (lengths) throw new IllegalArgumentException("the string at " + where + " has both a pattern and length bounds, which are not followed together");
            return "\"" + JsonStringPattern.of(schema.get("pattern").asText(), where) + "\"";
        }
        String format = FORMATS.get(schema.path("format").asText(""));
        if (format != null) {
            if (lengths) throw new IllegalArgumentException("the string at " + where + " has both a format and length bounds, which are not followed together");
            return "\"" + format + "\"";
        }
        int min = schema.path("minLength").asInt(0), max = schema.has("maxLength") ? schema.get("maxLength").asInt() : -1;
        if (min == 0 && max < 0) return STRING;
        return "\"" + STRING_CHAR + bounds(min, max) + "\"";
    }

    private static final String DATE = "[0-9]{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])";
    /** RFC 3339's full-time: the offset is required; at most 16 digits of a second's fraction, as numbers have. */
    private static final String TIME = "(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\\.[0-9]{1," + NumberRange.MAX_FRACTION_DIGITS
            + "})?(?:Z|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])";
    /** The string formats followed (RFC 3339 dates and times, UUIDs, IPv4 addresses, plain e-mail addresses), as outlines follows them. */
    private static final Map<String, String> FORMATS = Map.of(
            "date-time", DATE + "T" + TIME,
            "date", DATE,
            "time", TIME,
            "uuid", "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}",
            "ipv4", "(?:(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])\\.){3}(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])",
            "email", "[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\\.[A-Za-z0-9-]+)*\\.[A-Za-z]{2,}");

    /**
     * Keywords that restrict a value in ways no pattern here follows: a schema holding one is refused
     * naming it, rather than followed without it (an output that broke it would pass as valid).
     */
    private static final List<String> UNFOLLOWED = List.of("not", "if", "then", "else", "patternProperties", "multipleOf", "contains",
            "minContains", "maxContains", "dependentRequired", "dependentSchemas", "propertyNames", "minProperties", "maxProperties",
            "unevaluatedItems", "unevaluatedProperties");

    private static void refuseUnfollowed(JsonNode schema, String where) {
        for (String keyword : UNFOLLOWED) {
            if (schema.has(keyword)) throw new IllegalArgumentException("'" + keyword + "' at " + where + " is not supported");
        }
        // uniqueItems is taken and not enforced: an item may repeat. The sets it describes (a Java Set, a Python set,
        // as Spring AI's and Pydantic's schemas write them) absorb a repeat, and refusing them would refuse those models.
        if (schema.has("allOf") && schema.get("allOf").size() != 1) {
            throw new IllegalArgumentException("'allOf' of " + schema.get("allOf").size() + " schemas at " + where + " is not supported "
                    + "(one is, or merge them into one schema)");
        }
        // A $ref or a one-schema allOf stands for its schema; keywords beside it would be dropped, so they are refused.
        for (String alone : List.of("$ref", "allOf")) {
            if (!schema.has(alone)) continue;
            for (Iterator<String> it = schema.fieldNames(); it.hasNext(); ) {
                String keyword = it.next();
                if (!keyword.equals(alone) && !ANNOTATIONS.contains(keyword)) {
                    throw new IllegalArgumentException("'" + keyword + "' beside '" + alone + "' at " + where
                            + " is not supported (merge it into the schema referred to)");
                }
            }
        }
    }

    /** Keywords that describe a schema and restrict nothing: taken beside a $ref or an allOf. */
    private static final Set<String> ANNOTATIONS = Set.of("title", "description", "default", "examples", "$comment", "$defs",
            "definitions", "$schema", "$id", "deprecated", "readOnly", "writeOnly", "discriminator", "nullable");

    private String arrayOf(JsonNode schema, String where) {
        int min = schema.path("minItems").asInt(0), max = schema.has("maxItems") ? schema.get("maxItems").asInt() : -1;
        if (min < 0 || (max >= 0 && min > max)) throw new IllegalArgumentException("no array at " + where + " has " + min + " to " + max + " items");
        JsonNode items = schema.get("items");
        // A tuple: 2020-12's prefixItems then items, or draft 7's items as a list then additionalItems.
        String prefixKey = schema.has("prefixItems") && !schema.get("prefixItems").isEmpty() ? "prefixItems"
                : items != null && items.isArray() && !items.isEmpty() ? "items" : null;
        if (prefixKey != null) {
            List<String> prefix = new ArrayList<>();
            int i = 0;
            for (JsonNode item : schema.get(prefixKey)) prefix.add(value(item, where + "/" + prefixKey + "/" + i++));
            String restKey = prefixKey.equals("items") ? "additionalItems" : "items";
            JsonNode more = schema.get(restKey);
            String rest = more == null ? anyValue(2) : more.isBoolean() ? (more.asBoolean() ? anyValue(2) : null) : value(more, where + "/" + restKey);
            return tuple(prefix, rest, min, max, where);
        }
        if (items != null && items.isBoolean()) {
            if (items.asBoolean()) return array(anyValue(2), min, max);
            if (min > 0) throw new IllegalArgumentException("no array at " + where + " has minItems " + min + " items: items is false");
            return array("", 0, 0);
        }
        String item = items != null ? value(items, where + "/items") : anyValue(2);
        return array(item, min, max);
    }

    /**
     * An array whose first items follow {@code prefix} in order and any further ones {@code rest}
     * (null: none may follow), {@code min} to {@code max} items in all (-1: no bound): a tuple, as
     * Pydantic writes {@code tuple[int, str]}.
     */
    private String tuple(List<String> prefix, String rest, int min, int max, String where) {
        int limit = rest == null ? (max < 0 ? prefix.size() : Math.min(max, prefix.size())) : max;
        if (limit >= 0 && min > limit) throw new IllegalArgumentException("no array at " + where + " has minItems " + min + " items");
        if (limit - prefix.size() > 1000) throw new IllegalArgumentException("maxItems at " + where + " is above what is supported");
        if (prefix.size() > MAX_TUPLE_ITEMS) {
            throw new IllegalArgumentException("the tuple at " + where + " has " + prefix.size() + " prefixItems, more than " + MAX_TUPLE_ITEMS);
        }
        int written = limit < 0 ? prefix.size() : Math.min(limit, prefix.size());
        if (written - Math.min(min, written) > MAX_OPTIONAL_TUPLE_ITEMS) {
            throw new IllegalArgumentException("the tuple at " + where + " has more than " + MAX_OPTIONAL_TUPLE_ITEMS
                    + " optional prefixItems (each nests a group)");
        }
        // From the last position back: each item, then what may follow it, optional past minItems.
        String tail = "";
        if (rest != null && (limit < 0 || limit > prefix.size())) {
            int least = Math.max(0, min - prefix.size()), most = limit < 0 ? -1 : limit - prefix.size();
            tail = "(?:" + ws + "," + ws + rest + ")" + bounds(least, most);
        }
        for (int i = written - 1; i >= 0; i--) {
            String item = (i == 0 ? "" : ws + "," + ws) + prefix.get(i) + tail;
            tail = i < min ? item : "(?:" + item + ")?";
        }
        return "\\[" + ws + tail + ws + "\\]";
    }

    /** Tuples longer than this are refused; so are those with more optional items than nested groups may hold. */
    private static final int MAX_TUPLE_ITEMS = 1000;
    private static final int MAX_OPTIONAL_TUPLE_ITEMS = 100;

    private String object(JsonNode schema, String where) {
        JsonNode properties = schema.get("properties");
        for (JsonNode r : schema.path("required")) {
            if (properties == null || !properties.has(r.asText())) {
                throw new IllegalArgumentException("the required property '" + r.asText() + "' at " + where + " is not among its properties "
                        + "(an output holds only the properties named)");
            }
        }
        if (properties == null || properties.isEmpty()) {
            JsonNode additional = schema.get("additionalProperties");
            if (additional != null && additional.isBoolean() && !additional.asBoolean()) return "\\{" + ws + "\\}";
            String value = additional != null && additional.isObject() ? value(additional, where + "/additionalProperties") : anyValue(2);
            return object(value);
        }
        Set<String> required = new HashSet<>();
        for (JsonNode r : schema.path("required")) required.add(r.asText());
        List<String> members = new ArrayList<>();
        List<Boolean> isRequired = new ArrayList<>();
        for (Iterator<Map.Entry<String, JsonNode>> it = properties.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> p = it.next();
            members.add(literal(JSON.getNodeFactory().textNode(p.getKey())) + ws + ":" + ws
                    + value(p.getValue(), where + "/properties/" + p.getKey()));
            isRequired.add(required.contains(p.getKey()));
        }
        int firstRequired = isRequired.indexOf(true);
        String sep = ws + "," + ws;
        // The first member present is any of those up to the first required one; after it, each
        // required member follows with a comma, each optional one may.
        List<String> alternatives = new ArrayList<>();
        int lastFirst = firstRequired < 0 ? members.size() - 1 : firstRequired;
        for (int first = 0; first <= lastFirst; first++) {
            StringBuilder b = new StringBuilder(members.get(first));
            for (int j = first + 1; j < members.size(); j++) {
                b.append(isRequired.get(j) ? sep + members.get(j) : "(?:" + sep + members.get(j) + ")?");
            }
            alternatives.add(b.toString());
        }
        String body = "(?:" + String.join("|", alternatives) + ")";
        if (firstRequired < 0) body += "?";
        return "\\{" + ws + body + ws + "\\}";
    }

    private String ref(String ref, String where) {
        JsonNode target = target(ref, where);
        if (refsInUse.contains(ref)) {
            return GrammarRules.call(ruleOfRef.computeIfAbsent(ref, r -> "ref" + (ruleOfRef.size() + 1)));
        }
        if (refsInUse.size() >= MAX_REF_DEPTH) {
            throw new IllegalArgumentException("the $refs at " + where + " nest deeper than " + MAX_REF_DEPTH + " levels");
        }
        refsInUse.add(ref);
        try {
            return value(target, ref);
        } finally {
            refsInUse.remove(ref);
        }
    }

    private JsonNode target(String ref, String where) {
        if (!ref.startsWith("#")) throw new IllegalArgumentException("the $ref '" + ref + "' at " + where + " is not local to the schema");
        JsonNode target = root;
        if (ref.length() > 1) {
            if (!ref.startsWith("#/")) throw new IllegalArgumentException("the $ref '" + ref + "' at " + where + " is not a JSON pointer");
            for (String part : ref.substring(2).split("/")) {
                target = target.get(part.replace("~1", "/").replace("~0", "~"));
                if (target == null) throw new IllegalArgumentException("the $ref '" + ref + "' at " + where + " names nothing in the schema");
            }
        }
        return target;
    }

    /** A JSON value written out, escaped for a regex. */
    private static String literal(JsonNode value) {
        String text;
        try {
            text = JSON.writeValueAsString(value);
        } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
            throw new IllegalArgumentException(e);
        }
        return Regex.quote(text);
    }
}
