package dev.jvllm;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Finds the tool calls in a model's free answer, for {@code tool_choice} "auto", as vLLM's
 * {@code --tool-call-parser}: each model family writes calls its own way. The server and the
 * LangChain4j models use it.
 * <ul>
 *   <li>{@code hermes} (Hermes, Qwen 2.5 and 3): {@code <tool_call>{"name": ..., "arguments": {...}}</tool_call>}
 *       blocks, the text before the first one (less the whitespace before the call) being the content;</li>
 *   <li>{@code llama3_json} (Llama 3.1 and 3.2): the whole answer is {@code {"name": ..., "parameters": {...}}},
 *       after an optional {@code <|python_tag|>}, several joined by {@code ;}.</li>
 * </ul>
 * Text that does not parse as calls is the answer's content, as vLLM leaves it.
 */
public enum ToolCallParser {
    HERMES {
        private final Pattern block = Pattern.compile("<tool_call>\\s*(.*?)\\s*</tool_call>", Pattern.DOTALL);

        @Override
        public Parsed parse(String text) {
            int first = text.indexOf(OPEN);
            if (first < 0) return new Parsed(text, List.of());
            List<Call> calls = new ArrayList<>();
            Matcher m = block.matcher(text);
            while (m.find()) {
                Call call = call(m.group(1), "arguments");
                if (call == null) return new Parsed(text, List.of());
                calls.add(call);
            }
            // The content keeps its leading whitespace, as a stream sends it; only the space before the first call goes.
            return calls.isEmpty() ? new Parsed(text, List.of()) : new Parsed(text.substring(0, first).stripTrailing(), calls);
        }

        @Override
        int heldFrom(CharSequence text, Holding state) {
            int block = state.call.first(text, 0);
            return state.withoutTrailingSpace(text, block >= 0 ? block : TagSearch.beforePartial(text, 0, OPEN));
        }
    },
    LLAMA3_JSON {
        @Override
        public Parsed parse(String text) {
            String body = text.strip();
            if (body.startsWith(PYTHON_TAG)) body = body.substring(PYTHON_TAG.length()).strip();
            if (!body.startsWith("{")) return new Parsed(text, List.of());
            List<Call> calls = new ArrayList<>();
            for (String part : splitTopLevel(body)) {
                Call call = call(part, "parameters");
                if (call == null) call = call(part, "arguments");
                if (call == null) return new Parsed(text, List.of());
                calls.add(call);
            }
            return new Parsed("", calls);
        }

        @Override
        int heldFrom(CharSequence text, Holding state) {
            int lead = state.firstNonSpace(text);
            String head = text.subSequence(lead, Math.min(text.length(), lead + PYTHON_TAG.length())).toString();
            if (head.isEmpty() || head.startsWith("{") || PYTHON_TAG.startsWith(head)) return 0;
            return text.length();
        }
    };

    private static final ObjectMapper JSON = new ObjectMapper();
    private static final String OPEN = "<tool_call>";
    private static final String PYTHON_TAG = "<|python_tag|>";


    /** One call: the function's name and its arguments as JSON text. */
    public record Call(String name, String arguments) {
    }

    /** The content left and the calls found (none: the whole answer is content). */
    public record Parsed(String content, List<Call> calls) {
    }

    /** The calls in a whole answer, and the content left beside them. */
    public abstract Parsed parse(String text);

    /**
     * Where a streamed answer's text must be held back, as far as {@code text} (the answer so far)
     * shows: the start of a call, or of what may still become one, or the whitespace before it. The
     * text before it is content whatever follows; the rest waits for the answer's end, when
     * {@link #parse} decides.
     */
    public int heldFrom(String text) {
        return holding().heldFrom(text);
    }

    /**
     * {@link #heldFrom} for one streamed answer as it grows: each call looks only at the text added
     * since the call before, so a whole stream costs time in proportion to its length.
     */
    public Holding holding() {
        return new Holding(this);
    }

    abstract int heldFrom(CharSequence text, Holding state);

    /**
     * Where one streamed answer must be held back ({@link ToolCallParser#heldFrom}), kept as it grows.
     * Each call must pass the same answer, grown by appending; not thread-safe.
     */
    public static final class Holding {
        private final ToolCallParser parser;
        private final TagSearch call = new TagSearch(OPEN);
        /** The text below this is whitespace. */
        private int lead;
        /** text[spaceStart, spaceEnd) is whitespace, after a character that is not or the text's start. */
        private int spaceStart, spaceEnd;

        private Holding(ToolCallParser parser) {
            this.parser = parser;
        }

        /** Where the answer so far must be held back from (the text before it is content whatever follows). */
        public int heldFrom(CharSequence answerSoFar) {
            return parser.heldFrom(answerSoFar, this);
        }

        private int firstNonSpace(CharSequence text) {
            while (lead < text.length() && Character.isWhitespace(text.charAt(lead))) lead++;
            return lead;
        }

        /**
         * {@code end}, moved back over the whitespace before it: text a call may follow, which the whole
         * answer strips. A run of whitespace already walked over is not walked again.
         */
        private int withoutTrailingSpace(CharSequence text, int end) {
            int i = end;
            int stop = end >= spaceEnd ? spaceEnd : 0;
            while (i > stop && Character.isWhitespace(text.charAt(i - 1))) i--;
            if (i == stop && stop == spaceEnd) i = spaceStart;
            spaceStart = i;
            spaceEnd = end;
            return i;
        }
    }

    /**
     * The calls of an answer held to {@link StructuredOutputs#toolCalls} (vLLM's tool choice
     * "required"): a JSON list of {@code {"name": ..., "parameters": {...}}}; null where the list did
     * not close or begin (the answer ran out of tokens, perhaps on whitespace before it).
     */
    public static List<Call> listed(String text) {
        try {
            JsonNode list = JSON.readTree(text);
            if (list == null || !list.isArray()) return null;
            List<Call> calls = new ArrayList<>();
            for (JsonNode call : list) calls.add(new Call(call.path("name").asText(), JSON.writeValueAsString(call.path("parameters"))));
            return calls;
        } catch (JsonProcessingException incomplete) {
            return null;
        }
    }

    /** The parser of a vLLM {@code --tool-call-parser} name. */
    public static ToolCallParser named(String name) {
        return switch (name.toLowerCase(Locale.ROOT)) {
            case "hermes" -> HERMES;
            case "llama3_json" -> LLAMA3_JSON;
            default -> throw new IllegalArgumentException("unknown tool-call parser '" + name + "' (hermes, llama3_json)");
        };
    }

    /** {@code {"name": ..., argumentsKey: {...}}} as a call, or null where the text is not one. */
    private static Call call(String json, String argumentsKey) {
        try {
            JsonNode node = JSON.readTree(json);
            if (node == null || !node.isObject() || !node.path("name").isTextual()) return null;
            JsonNode arguments = node.get(argumentsKey);
            if (arguments == null) return null;
            String text = arguments.isTextual() ? arguments.asText() : JSON.writeValueAsString(arguments);
            return new Call(node.get("name").asText(), text);
        } catch (JsonProcessingException e) {
            return null;
        }
    }

    /** The objects of {@code a; b; c} where the semicolons are outside strings and braces. */
    private static List<String> splitTopLevel(String text) {
        List<String> parts = new ArrayList<>();
        int depth = 0, start = 0;
        boolean inString = false, escaped = false;
        for (int i = 0; i < text.length(); i++) {
            char c = text.charAt(i);
            if (inString) {
                if (escaped) escaped = false;
                else if (c == '\\') escaped = true;
                else if (c == '"') inString = false;
            } else if (c == '"') {
                inString = true;
            } else if (c == '{' || c == '[') {
                depth++;
            } else if (c == '}' || c == ']') {
                depth--;
            } else if (c == ';' && depth == 0) {
                parts.add(text.substring(start, i).strip());
                start = i + 1;
            }
        }
        parts.add(text.substring(start).strip());
        parts.removeIf(String::isEmpty);
        return parts;
    }
}
