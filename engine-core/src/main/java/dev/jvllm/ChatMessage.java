package dev.jvllm;

import java.util.Map;
import java.util.Objects;

/** One message of a conversation for {@link LLM#chat}: a role ("system", "user", "assistant", ...) and its text. */
public record ChatMessage(String role, String content) {

    public ChatMessage {
        Objects.requireNonNull(role, "role");
        Objects.requireNonNull(content, "content");
    }

    public static ChatMessage system(String content) {
        return new ChatMessage("system", content);
    }

    public static ChatMessage user(String content) {
        return new ChatMessage("user", content);
    }

    public static ChatMessage assistant(String content) {
        return new ChatMessage("assistant", content);
    }

    /** The plain map a chat template sees. */
    Map<String, Object> asTemplateValue() {
        return Map.of("role", role, "content", content);
    }
}
