package dev.jvllm;

import dev.jvllm.tokenizer.ChatTemplate.ContentFormat;

import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Messages' content in the form their chat template reads it, as vLLM's chat parsing gives it
 * (its "content format"). A message's content comes as a string, as null, or as a list of parts
 * ({@code {"type": "text", "text": ...}}, {@code {"type": "image"}}, or a plain string for text).
 *
 * <ul>
 *   <li>{@link ContentFormat#OPENAI}: content becomes a list of parts (a string one text part,
 *       null none), which the template iterates over.</li>
 *   <li>{@link ContentFormat#STRING}: a list becomes its text parts joined by newlines, with the
 *       model's image placeholder once for each image not already written in the text, each on a
 *       line of its own before the text; null becomes the empty string; a string stays as it is.</li>
 * </ul>
 */
final class ChatContent {

    private ChatContent() {
    }

    /**
     * A model's image placeholder as prompt text for image n of a conversation (from 1): the same
     * text for every image, or numbered tags ({@code <|image_n|>}, Phi-3-Vision), which the engine
     * binds to the images by number.
     */
    record Placeholders(java.util.function.IntFunction<String> text, boolean numbered) {
    }

    /** How many image parts the messages hold. */
    static int countImages(List<? extends Map<String, ?>> messages) {
        int count = 0;
        for (Map<String, ?> message : messages) {
            if (message.get("content") instanceof List<?> parts) {
                for (Object part : parts) {
                    if (isImage(part)) count++;
                }
            }
        }
        return count;
    }

    /**
     * The messages with their content in {@code format}; other keys are kept as they are.
     *
     * @param placeholders the model's image placeholders (for {@link ContentFormat#STRING}); null for a text model
     * @throws InvalidRequestException where a message writes the placeholder more often than it has
     *                                 images, or holds a part the string format cannot render
     */
    static List<Map<String, Object>> format(List<? extends Map<String, ?>> messages, ContentFormat format, Placeholders placeholders) {
        List<Map<String, Object>> formatted = new ArrayList<>(messages.size());
        int imagesBefore = 0;
        for (int i = 0; i < messages.size(); i++) {
            Map<String, ?> message = messages.get(i);
            Map<String, Object> copy = new LinkedHashMap<>(message);
            Object content = message.get("content");
            copy.put("content", format == ContentFormat.OPENAI ? parts(content) : text(content, placeholders, i, imagesBefore));
            if (message.get("tool_calls") instanceof List<?> calls) copy.put("tool_calls", withArgumentObjects(calls));
            imagesBefore += countImages(List.of(message));
            formatted.add(copy);
        }
        return formatted;
    }

    /**
     * Tool calls with their {@code function.arguments} as objects where they are JSON objects given as
     * text (as OpenAI's clients send them), as vLLM passes them: the tool-use templates expect objects
     * ({@code arguments | tojson} would otherwise quote the text again).
     */
    private static List<Object> withArgumentObjects(List<?> calls) {
        List<Object> converted = new ArrayList<>(calls.size());
        for (Object call : calls) {
            if (call instanceof Map<?, ?> map && map.get("function") instanceof Map<?, ?> function
                    && function.get("arguments") instanceof String arguments) {
                Object parsed = argumentsObject(arguments);
                if (parsed != null) {
                    Map<Object, Object> functionCopy = new LinkedHashMap<>(function);
                    functionCopy.put("arguments", parsed);
                    Map<Object, Object> callCopy = new LinkedHashMap<>(map);
                    callCopy.put("function", functionCopy);
                    converted.add(callCopy);
                    continue;
                }
            }
            converted.add(call);
        }
        return converted;
    }

    /**
     * The arguments as a map where they are exactly one JSON object whose numbers the templates can
     * take (none past a long's or a double's range), else null: they stay the text they are.
     */
    private static Object argumentsObject(String arguments) {
        try {
            var node = ARGUMENTS_JSON.readTree(arguments);
            if (node == null || !node.isObject() || hasOutsizedNumber(node)) return null;
            return ARGUMENTS_JSON.convertValue(node, Map.class);
        } catch (com.fasterxml.jackson.core.JsonProcessingException notJson) {
            return null;
        }
    }

    private static boolean hasOutsizedNumber(com.fasterxml.jackson.databind.JsonNode node) {
        if (node.isBigInteger() || node.isBigDecimal()) return true;
        if (node.isDouble() && !Double.isFinite(node.doubleValue())) return true;
        for (var child : node) {
            if (hasOutsizedNumber(child)) return true;
        }
        return false;
    }

    /** Trailing text after the object makes it no JSON object (it stays text). */
    private static final com.fasterxml.jackson.databind.ObjectMapper ARGUMENTS_JSON = new com.fasterxml.jackson.databind.ObjectMapper()
            .enable(com.fasterxml.jackson.databind.DeserializationFeature.FAIL_ON_TRAILING_TOKENS);

    private static boolean isImage(Object part) {
        return part instanceof Map<?, ?> map && "image".equals(map.get("type"));
    }

    private static Object parts(Object content) {
        if (content == null) return List.of();
        if (content instanceof String text) return List.of(textPart(text));
        if (!(content instanceof List<?> list)) return content;
        List<Object> parts = new ArrayList<>(list.size());
        for (Object part : list) parts.add(part instanceof String text ? textPart(text) : part);
        return parts;
    }

    private static Map<String, Object> textPart(String text) {
        Map<String, Object> part = new LinkedHashMap<>();
        part.put("type", "text");
        part.put("text", text);
        return part;
    }

    private static Object text(Object content, Placeholders placeholderOf, int message, int imagesBefore) {
        if (content == null) return "";
        if (!(content instanceof List<?> list)) return content;
        List<String> texts = new ArrayList<>();
        int images = 0;
        for (Object part : list) {
            if (part instanceof String text) {
                texts.add(text);
            } else if (isImage(part)) {
                images++;
            } else if (part instanceof Map<?, ?> map && "text".equals(map.get("type")) && map.get("text") instanceof String text) {
                texts.add(text);
            } else {
                Object type = part instanceof Map<?, ?> map ? map.get("type") : part;
                throw new InvalidRequestException("messages", "message " + message + " holds a content part of type '" + type
                        + "', which this model's chat template (it reads content as a string) cannot take; parts are text or image");
            }
        }
        String text = String.join("\n", texts);
        if (images == 0) return text;
        if (placeholderOf == null) throw new InvalidRequestException("images", "this model takes no images");
        List<String> placeholders = java.util.stream.IntStream.rangeClosed(imagesBefore + 1, imagesBefore + images)
                .mapToObj(placeholderOf.text()).toList();
        List<String> lines = new ArrayList<>();
        if (placeholderOf.numbered()) {  // the tags of the message's images it does not write
            for (String tag : placeholders) if (!text.contains(tag)) lines.add(tag);
        } else {
            String placeholder = placeholders.getFirst();
            int written = occurrences(text, placeholder);
            if (written > images) {
                throw new InvalidRequestException("messages", "message " + message + " writes the image placeholder '" + placeholder
                        + "' " + written + " times for " + images + " image" + (images == 1 ? "" : "s"));
            }
            lines.addAll(Collections.nCopies(images - written, placeholder));
        }
        if (!text.isEmpty()) lines.add(text);
        return String.join("\n", lines);
    }

    private static int occurrences(String text, String of) {
        int count = 0;
        for (int at = text.indexOf(of); at >= 0; at = text.indexOf(of, at + of.length())) count++;
        return count;
    }
}
