package dev.jvllm;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * One message of a conversation for {@link LLM#chat}: a role ("system", "user", "assistant", ...)
 * and its content, as parts in order: text, and for a vision-language model images (OpenAI's
 * content array). Most messages are text alone:
 *
 * <pre>{@code
 * List<ChatMessage> conversation = List.of(
 *         ChatMessage.system("Be brief."),
 *         ChatMessage.user("What is shown here?", ImageInput.read(Path.of("cat.png"))));
 * // parts in an order of one's own:
 * new ChatMessage("user", List.of(Part.text("Compare"), Part.image(a), Part.text("with"), Part.image(b)));
 * }</pre>
 *
 * <p>The images of a conversation go to the model in message order, and within a message in part
 * order. How the parts reach the chat template depends on the template (see {@link LLM#renderChat(List)}).
 *
 * @param role  who speaks
 * @param parts the content, in order (a text message holds one text part)
 */
public record ChatMessage(String role, List<Part> parts) {

    public ChatMessage {
        Objects.requireNonNull(role, "role");
        parts = List.copyOf(Objects.requireNonNull(parts, "parts"));
    }

    /** A message of text alone. */
    public ChatMessage(String role, String content) {
        this(role, List.of(Part.text(content)));
    }

    public static ChatMessage system(String content) {
        return new ChatMessage("system", content);
    }

    public static ChatMessage user(String content) {
        return new ChatMessage("user", content);
    }

    /**
     * A user message of images and text: the images first, in the order given, then the text (left
     * out when empty), as LLaVA's prompts hold them ({@code USER: <image>\nWhat is shown? ...}).
     */
    public static ChatMessage user(String text, ImageInput... images) {
        Objects.requireNonNull(text, "text");
        List<Part> parts = new ArrayList<>(images.length + 1);
        for (ImageInput image : images) parts.add(Part.image(image));
        if (!text.isEmpty() || images.length == 0) parts.add(Part.text(text));
        return new ChatMessage("user", parts);
    }

    public static ChatMessage assistant(String content) {
        return new ChatMessage("assistant", content);
    }

    /** The message's text: its text parts, joined by newlines (as vLLM joins them), images left out. */
    public String content() {
        StringBuilder text = new StringBuilder();
        for (Part part : parts) {
            if (part instanceof Part.Text(String t)) {
                if (!text.isEmpty()) text.append('\n');
                text.append(t);
            }
        }
        return text.toString();
    }

    /** The message's images, in part order; empty for text alone. */
    public List<ImageInput> images() {
        List<ImageInput> images = new ArrayList<>();
        for (Part part : parts) {
            if (part instanceof Part.Image(ImageInput image)) images.add(image);
        }
        return List.copyOf(images);
    }

    /**
     * The plain map a chat template's formatting starts from: content a string for a message of
     * one text part (as before parts existed), else OpenAI's parts as a template sees them,
     * {@code {"type": "text", "text": ...}} and {@code {"type": "image"}}.
     */
    Map<String, Object> asTemplateValue() {
        Object content;
        if (parts.size() == 1 && parts.getFirst() instanceof Part.Text(String text)) {
            content = text;
        } else {
            List<Map<String, Object>> values = new ArrayList<>(parts.size());
            for (Part part : parts) {
                values.add(switch (part) {
                    case Part.Text(String text) -> Map.of("type", "text", "text", text);
                    case Part.Image image -> Map.of("type", "image");
                });
            }
            content = values;
        }
        Map<String, Object> value = new LinkedHashMap<>();
        value.put("role", role);
        value.put("content", content);
        return value;
    }

    /** A part of a message's content: {@link Text} or {@link Image}. */
    public sealed interface Part {

        static Part text(String text) {
            return new Text(text);
        }

        static Part image(ImageInput image) {
            return new Image(image);
        }

        /** Text. */
        record Text(String text) implements Part {
            public Text {
                Objects.requireNonNull(text, "text");
            }
        }

        /** An image, for a vision-language model. */
        record Image(ImageInput image) implements Part {
            public Image {
                Objects.requireNonNull(image, "image");
            }
        }
    }
}
