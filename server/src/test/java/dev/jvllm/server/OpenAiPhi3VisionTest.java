package dev.jvllm.server;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.jvllm.ChatMessage;
import dev.jvllm.ChatMessage.Part;
import dev.jvllm.ImageInput;
import dev.jvllm.LLM;
import dev.jvllm.RequestOutput;
import dev.jvllm.models.LlavaChatModel;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.Base64;
import java.util.List;
import java.util.Map;

import static dev.jvllm.server.OpenAiServerTest.greedy;
import static dev.jvllm.server.OpenAiServerTest.post;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Phi-3-Vision over the OpenAI API: its images are numbered tags ({@code <|image_1|>}, ...) that the
 * server's chat binds to the request's {@code image_url} parts by number, as the library's
 * {@link LLM#chat} does (the tiny golden of model-zoo with {@link LlavaChatModel}'s word-level tokenizer).
 */
class OpenAiPhi3VisionTest {

    private static final ObjectMapper JSON = new ObjectMapper();
    private static final String GOLDEN = "/vision-goldens/phi3v/";

    @TempDir
    static Path model;
    static OpenAiServer server;
    static LLM reference;

    @BeforeAll
    static void start() throws Exception {
        LlavaChatModel.write(model, GOLDEN, List.of("config.json", "preprocessor_config.json", "model.safetensors"),
                Map.of(500, "<|image|>"), "{{ bos_token }}{% for m in messages %}{{ m['content'] }}{% endfor %}");
        server = OpenAiServer.builder(LLM.builder().model(model.toString()).device("cpu").maxModelLen(128).build()).port(0)
                .servedModelName("phi3v").start();
        reference = LLM.builder().model(model.toString()).device("cpu").maxModelLen(128).build();
    }

    @AfterAll
    static void stop() {
        server.close();
        reference.close();
    }

    private static byte[] png(int image) {
        return LlavaChatModel.png(GOLDEN, image);
    }

    /** Two images; the text writes the second's tag between words, and the server adds the first's before it. */
    @Test
    void aChatWithNumberedImageTagsIsTheLibrarysChat() throws Exception {
        String text = "w100 <|image_2|> w101 w102";
        ImageInput first = ImageInput.decode(png(0)), second = ImageInput.decode(png(3));
        RequestOutput expected = reference.chat(List.of(new ChatMessage("user", List.of(Part.text(text), Part.image(first),
                Part.image(second)))), greedy(12));

        ObjectNode body = JSON.createObjectNode().put("model", "phi3v").put("max_tokens", 12).put("temperature", 0);
        ArrayNode content = body.putArray("messages").addObject().put("role", "user").putArray("content");
        content.addObject().put("type", "text").put("text", text);
        for (int image : new int[]{0, 3}) {
            content.addObject().put("type", "image_url").putObject("image_url")
                    .put("url", "data:image/png;base64," + Base64.getEncoder().encodeToString(png(image)));
        }
        OpenAiServerTest.Answer answer = post(server, "/v1/chat/completions", body.toString());

        assertEquals(200, answer.status(), String.valueOf(answer.body()));
        assertEquals(expected.text(), answer.body().path("choices").get(0).path("message").path("content").asText());
        assertEquals(expected.promptTokenIds().size(), answer.body().path("usage").path("prompt_tokens").asInt());
        // <s>, image 1's 27 positions, a line break, w100, image 2's 25, w101 w102
        assertEquals(1 + 27 + 1 + 1 + 25 + 2, expected.promptTokenIds().size());
        assertTrue(expected.promptTokenIds().indexOf(500) == 1, expected.promptTokenIds().toString());
    }
}
