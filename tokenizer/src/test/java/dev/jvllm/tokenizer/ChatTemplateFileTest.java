package dev.jvllm.tokenizer;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Transformers 5 saves the chat template as chat_template.jinja beside tokenizer_config.json. */
class ChatTemplateFileTest {

    private static final Path DEMO = Path.of("..", "models", "jvllm-demo");
    private static final String TEMPLATE = "{% for m in messages %}[{{ m['role'] }}]{{ m['content'] }}{% endfor %}"
            + "{% if add_generation_prompt %}[assistant]{% endif %}";

    private static Path modelWithTemplateFile(Path dir, String template) throws IOException {
        Files.copy(DEMO.resolve("tokenizer.json"), dir.resolve("tokenizer.json"));
        ObjectMapper json = new ObjectMapper();
        ObjectNode config = (ObjectNode) json.readTree(DEMO.resolve("tokenizer_config.json").toFile());
        config.remove("chat_template");
        json.writeValue(dir.resolve("tokenizer_config.json").toFile(), config);
        Files.writeString(dir.resolve("chat_template.jinja"), template);
        return dir;
    }

    @Test
    void templateIsReadFromChatTemplateJinja(@TempDir Path dir) throws IOException {
        try (HfTokenizer tokenizer = HfTokenizer.load(modelWithTemplateFile(dir, TEMPLATE))) {
            String rendered = tokenizer.chatTemplate().orElseThrow()
                    .render(List.of(Map.of("role", "user", "content", "hi")), true);
            assertEquals("[user]hi[assistant]", rendered);
        }
    }

    @Test
    void aBrokenTemplateFileIsReportedNamingTheFile(@TempDir Path dir) throws IOException {
        try (HfTokenizer tokenizer = HfTokenizer.load(modelWithTemplateFile(dir, "{% for m in messages %}"))) {
            ChatTemplateException e = assertThrows(ChatTemplateException.class, tokenizer::chatTemplate);
            assertTrue(e.getMessage().contains("chat_template.jinja"), e.getMessage());
        }
    }
}
