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

    private static String rendered(Path dir) {
        try (HfTokenizer tokenizer = HfTokenizer.load(dir)) {
            return tokenizer.chatTemplate().orElseThrow().render(List.of(Map.of("role", "user", "content", "hi")), true);
        }
    }

    private static void writeProcessorTemplate(Path dir, String template) throws IOException {
        new ObjectMapper().writeValue(dir.resolve("chat_template.json").toFile(), Map.of("chat_template", template));
    }

    @Test
    void aProcessorsChatTemplateJsonIsReadAsLlavaCheckpointsKeepIt(@TempDir Path dir) throws IOException {
        modelWithTemplateFile(dir, TEMPLATE);
        Files.delete(dir.resolve("chat_template.jinja"));
        writeProcessorTemplate(dir, "{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}{% endfor %}");
        assertEquals("<user>hi", rendered(dir));
    }

    @Test
    void chatTemplateJinjaComesFirstThenChatTemplateJsonThenTheTokenizerConfig(@TempDir Path dir) throws IOException {
        modelWithTemplateFile(dir, "jinja");
        ObjectMapper json = new ObjectMapper();
        ObjectNode config = (ObjectNode) json.readTree(dir.resolve("tokenizer_config.json").toFile());
        config.put("chat_template", "config");
        json.writeValue(dir.resolve("tokenizer_config.json").toFile(), config);
        writeProcessorTemplate(dir, "json");
        assertEquals("jinja", rendered(dir));
        Files.delete(dir.resolve("chat_template.jinja"));
        assertEquals("json", rendered(dir));
        Files.delete(dir.resolve("chat_template.json"));
        assertEquals("config", rendered(dir));
    }

    @Test
    void aChatTemplateJsonWithoutATemplateLeavesTheConfigsAndAMalformedOneIsReported(@TempDir Path dir) throws IOException {
        modelWithTemplateFile(dir, TEMPLATE);
        Files.delete(dir.resolve("chat_template.jinja"));
        Files.writeString(dir.resolve("chat_template.json"), "{\"other\": 1}");
        try (HfTokenizer tokenizer = HfTokenizer.load(dir)) {
            assertTrue(tokenizer.chatTemplate().isEmpty());
        }
        Files.writeString(dir.resolve("chat_template.json"), "{\"chat_template\": ");
        TokenizerException e = assertThrows(TokenizerException.class, () -> HfTokenizer.load(dir).close());
        assertTrue(e.getMessage().contains("chat_template.json"), e.getMessage());
    }

    @Test
    void aBrokenTemplateFileIsReportedNamingTheFile(@TempDir Path dir) throws IOException {
        try (HfTokenizer tokenizer = HfTokenizer.load(modelWithTemplateFile(dir, "{% for m in messages %}"))) {
            ChatTemplateException e = assertThrows(ChatTemplateException.class, tokenizer::chatTemplate);
            assertTrue(e.getMessage().contains("chat_template.jinja"), e.getMessage());
        }
    }
}
