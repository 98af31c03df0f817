package dev.jvllm.server;

import dev.jvllm.EngineConfig;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.jvllm.ChatMessage;
import dev.jvllm.ChatMessage.Part;
import dev.jvllm.LLM;
import dev.jvllm.RequestOutput;
import dev.jvllm.engine.LLMEngine;
import dev.jvllm.models.LlavaChatModel;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.net.URI;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;

import static dev.jvllm.server.OpenAiServerTest.assertError;
import static dev.jvllm.server.OpenAiServerTest.client;
import static dev.jvllm.server.OpenAiServerTest.greedy;
import static dev.jvllm.server.OpenAiServerTest.post;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Chat with images over the OpenAI API, as {@code vllm serve} takes them: {@code image_url} parts
 * holding base64 data URLs, on the tiny LLaVA ({@link LlavaChatModel}), answered as the library's
 * {@link LLM#chat} answers the same messages.
 */
class OpenAiVisionTest {

    private static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    static Path model;
    static OpenAiServer server;
    static LLM reference;

    @BeforeAll
    static void start() throws Exception {
        LlavaChatModel.write(model, LlavaChatModel.LLAVA_TEMPLATE);
        server = OpenAiServer.builder(LLM.builder().model(model.toString()).device("cpu").maxModelLen(128).build()).port(0)
                .servedModelName("llava").start();
        reference = LLM.builder().model(model.toString()).device("cpu").maxModelLen(128).build();
    }

    @AfterAll
    static void stop() {
        server.close();
        reference.close();
    }

    private static String dataUrl(int image) {
        return "data:image/png;base64," + Base64.getEncoder().encodeToString(LlavaChatModel.png(image));
    }

    private static ObjectNode imagePart(Object url) {
        ObjectNode part = JSON.createObjectNode().put("type", "image_url");
        if (url instanceof String s) part.putObject("image_url").put("url", s);
        else part.set("image_url", (JsonNode) url);
        return part;
    }

    private static ObjectNode textPart(String text) {
        return JSON.createObjectNode().put("type", "text").put("text", text);
    }

    /** A chat request of one user message holding {@code parts}, greedy for 12 tokens. */
    private static String request(JsonNode... parts) {
        ObjectNode body = JSON.createObjectNode().put("model", "llava").put("max_tokens", 12).put("temperature", 0);
        ArrayNode content = body.putArray("messages").addObject().put("role", "user").putArray("content");
        for (JsonNode part : parts) content.add(part);
        return body.toString();
    }

    @Test
    void aChatWithAnImageIsTheLibrarysChatWithThatImage() throws Exception {
        RequestOutput expected = reference.chat(List.of(ChatMessage.user("What is shown?", LlavaChatModel.image(0))), greedy(12));

        OpenAiServerTest.Answer answer = post(server, "/v1/chat/completions", request(textPart("What is shown?"), imagePart(dataUrl(0))));

        assertEquals(200, answer.status(), String.valueOf(answer.body()));
        assertEquals(expected.text(), answer.body().path("choices").get(0).path("message").path("content").asText());
        // the prompt counts the image's 16 positions, as the library's
        assertEquals(expected.promptTokenIds().size(), answer.body().path("usage").path("prompt_tokens").asInt());
        assertEquals(expected.outputs().getFirst().tokenIds().size(), answer.body().path("usage").path("completion_tokens").asInt());
    }

    @Test
    void imagesGoInPartOrderAndImageUrlMayBeAPlainString() throws Exception {
        RequestOutput expected = reference.chat(List.of(new ChatMessage("user", List.of(Part.image(LlavaChatModel.image(1)),
                Part.text("Describe both images."), Part.image(LlavaChatModel.image(0))))), greedy(12));

        String body = request(imagePart(JSON.getNodeFactory().textNode(dataUrl(1))), textPart("Describe both images."),
                JSON.createObjectNode().put("image_url", dataUrl(0)));
        OpenAiServerTest.Answer answer = post(server, "/v1/chat/completions", body);

        assertEquals(200, answer.status(), String.valueOf(answer.body()));
        assertEquals(expected.text(), answer.body().path("choices").get(0).path("message").path("content").asText());
        assertEquals(expected.promptTokenIds().size(), answer.body().path("usage").path("prompt_tokens").asInt());
        List<JsonNode> chunks = OpenAiServerTest.stream(server, "/v1/chat/completions",
                ((ObjectNode) JSON.readTree(body)).put("stream", true).toString());
        StringBuilder text = new StringBuilder();
        for (JsonNode chunk : chunks) text.append(chunk.path("choices").get(0).path("delta").path("content").asText(""));
        assertEquals(expected.text(), text.toString());
    }

    @Test
    void anImageFromAnotherKindOfUrlIsA400SayingOnlyDataUrlsAreAccepted() throws Exception {
        for (String url : List.of("http://127.0.0.1:9/cat.png", "https://example.com/cat.png", "file:///etc/passwd")) {
            OpenAiServerTest.Answer answer = post(server, "/v1/chat/completions", request(textPart("What is shown?"), imagePart(url)));
            assertError(answer, 400, "messages[0].content[1].image_url");
            assertTrue(answer.body().path("error").path("message").asText().contains("only data URLs are accepted"),
                    answer.body().toString());
            assertEquals(400, answer.body().path("error").path("code").asInt());
            assertEquals("invalid_request_error", answer.body().path("error").path("type").asText());
        }
        assertError(post(server, "/v1/chat/completions", request(imagePart("data:image/png,%89PNG"))), 400, "messages[0].content[0].image_url");
    }

    @Test
    void badBase64AndBytesThatAreNoImageAre400sNamingThePart() throws Exception {
        OpenAiServerTest.Answer badBase64 = post(server, "/v1/chat/completions",
                request(textPart("What is shown?"), imagePart("data:image/png;base64,iVBOR&*not-base64")));
        assertError(badBase64, 400, "messages[0].content[1].image_url");
        assertTrue(badBase64.body().path("error").path("message").asText().contains("base64"), badBase64.body().toString());

        String notAnImage = "data:image/png;base64," + Base64.getEncoder().encodeToString("no picture".getBytes(StandardCharsets.UTF_8));
        assertError(post(server, "/v1/chat/completions", request(imagePart(notAnImage), textPart("What is shown?"))), 400,
                "messages[0].content[0].image_url");
        assertError(post(server, "/v1/chat/completions", request(imagePart(JSON.createObjectNode().put("link", "x")))), 400,
                "messages[0].content[0].image_url");
        assertError(post(server, "/v1/chat/completions", request(JSON.createObjectNode().put("type", "input_audio"))), 400,
                "messages[0].content[0]");
    }

    @Test
    void moreImagesThanAPromptTakesOrPlaceholdersWithoutImagesAre400s() throws Exception {
        JsonNode[] parts = new JsonNode[EngineConfig.DEFAULT_IMAGES_PER_PROMPT + 2];
        parts[0] = textPart("What is shown?");
        for (int i = 1; i < parts.length; i++) parts[i] = imagePart(dataUrl(0));
        assertError(post(server, "/v1/chat/completions", request(parts)), 400, "messages");
        // a placeholder written in the text as well as the image's: two placeholders for one image
        assertError(post(server, "/v1/chat/completions", request(textPart("<image> What is shown?"), imagePart(dataUrl(0)))), 400,
                "images");
        // the server serves on
        assertEquals(200, post(server, "/v1/chat/completions", request(textPart("What is shown?"), imagePart(dataUrl(0)))).status());
    }

    @Test
    void anImageOverTheSizeBoundIsRefusedBeforeDecoding() throws Exception {
        // built in memory: over HTTP, the body limit (16 MiB by default) and the JSON parser's 20 M characters a string come first
        String huge = "data:image/png;base64," + "A".repeat((int) (OpenAiRequests.MAX_IMAGE_BYTES / 3 * 4 + 8));
        ObjectNode body = JSON.createObjectNode();
        body.putArray("messages").addObject().put("role", "user").putArray("content").add(imagePart(huge));
        ApiError e = assertThrows(ApiError.class, () -> OpenAiRequests.messages(body, EngineConfig.DEFAULT_IMAGES_PER_PROMPT));
        assertEquals("messages[0].content[0].image_url", e.param);
        assertTrue(e.getMessage().contains("20 MiB"), e.getMessage());
    }

    @Test
    void tokenizeRendersTheChatWithItsPlaceholder() throws Exception {
        OpenAiServerTest.Answer answer = post(server, "/tokenize", "{\"messages\": " + JSON.readTree(
                request(textPart("What is shown?"), imagePart(dataUrl(0)))).get("messages") + "}");
        assertEquals(200, answer.status(), String.valueOf(answer.body()));
        List<Integer> tokens = new ArrayList<>();
        answer.body().path("tokens").forEach(t -> tokens.add(t.asInt()));
        String rendered = reference.renderChat(List.of(ChatMessage.user("What is shown?", LlavaChatModel.image(0))));
        assertEquals("USER: <image>\nWhat is shown? ASSISTANT:", rendered);
        int[] expected = reference.tokenizer().encode(rendered, false);
        assertEquals(expected.length, tokens.size());
        assertTrue(tokens.contains(LlavaChatModel.IMAGE_TOKEN));
    }

    @Test
    void theMaxTokensRoomCheckCountsTheImagesPositions() throws Exception {
        // 25 prompt positions (10 tokens, the image's placeholder expanded to 16) + 104 > 128
        ObjectNode body = (ObjectNode) JSON.readTree(request(textPart("What is shown?"), imagePart(dataUrl(0))));
        assertError(post(server, "/v1/chat/completions", body.put("max_tokens", 104).toString()), 400, "max_tokens");
        HttpResponse<String> fits = client.send(HttpRequest.newBuilder(URI.create(server.address() + "/v1/chat/completions"))
                .POST(HttpRequest.BodyPublishers.ofString(body.put("max_tokens", 103).put("ignore_eos", true).toString())).build(),
                HttpResponse.BodyHandlers.ofString());
        assertEquals(200, fits.statusCode(), fits.body());
    }
}
