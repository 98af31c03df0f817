package dev.jvllm.server;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.jvllm.ChatMessage;
import dev.jvllm.LLM;
import dev.jvllm.LoraRequest;
import dev.jvllm.weights.Checkpoint;
import dev.jvllm.weights.WeightTensor;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.net.URI;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Random;

import static dev.jvllm.server.OpenAiServerTest.DEMO;
import static dev.jvllm.server.OpenAiServerTest.client;
import static dev.jvllm.server.OpenAiServerTest.greedy;
import static dev.jvllm.server.OpenAiServerTest.post;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * LoRA adapters served under their own names, as {@code vllm serve --lora-modules name=path}: a
 * request whose {@code model} names the adapter answers as the library does with that
 * {@link LoraRequest}, beside requests to the base model.
 */
class OpenAiLoraTest {

    private static final String PROMPT = "The European Parliament";
    private static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    static Path adapter;
    static OpenAiServer server;
    static LLM reference;
    static LoraRequest lora;

    @BeforeAll
    static void start() throws Exception {
        writeAdapter(adapter);
        lora = new LoraRequest("terse", 1, adapter);
        server = OpenAiServer.builder(LLM.builder().model(DEMO.toString()).device("cpu").enableLora(true).build()).port(0)
                .servedModelName("demo").loraModule("terse", adapter).start();
        reference = LLM.builder().model(DEMO.toString()).device("cpu").enableLora(true).build();
    }

    @AfterAll
    static void stop() {
        server.close();
        reference.close();
    }

    @Test
    void modelsListsTheAdapterWithTheServedModelAsItsParent() throws Exception {
        JsonNode list = JSON.readTree(client.send(HttpRequest.newBuilder(URI.create(server.address() + "/v1/models")).build(),
                HttpResponse.BodyHandlers.ofString()).body());
        assertEquals("demo", list.path("data").get(0).path("id").asText());
        assertEquals("terse", list.path("data").get(1).path("id").asText());
        assertEquals("demo", list.path("data").get(1).path("parent").asText());
    }

    @Test
    void completionsAndChatNamingTheAdapterRunWithIt() throws Exception {
        String withAdapter = reference.generate(PROMPT, greedy(12), lora).text();
        String plain = reference.generate(PROMPT, greedy(12)).text();
        assertNotEquals(plain, withAdapter, "the adapter changes the text (else the test could not see it missing)");

        OpenAiServerTest.Answer adapted = post(server, "/v1/completions",
                "{\"model\": \"terse\", \"prompt\": \"" + PROMPT + "\", \"max_tokens\": 12, \"temperature\": 0}");
        assertEquals(200, adapted.status(), String.valueOf(adapted.body()));
        assertEquals(withAdapter, adapted.body().path("choices").get(0).path("text").asText());
        assertEquals("terse", adapted.body().path("model").asText());
        OpenAiServerTest.Answer base = post(server, "/v1/completions",
                "{\"model\": \"demo\", \"prompt\": \"" + PROMPT + "\", \"max_tokens\": 12, \"temperature\": 0}");
        assertEquals(plain, base.body().path("choices").get(0).path("text").asText());

        List<ChatMessage> messages = List.of(ChatMessage.user("Hello there"));
        String chatted = reference.chat(messages, greedy(8), lora).text();
        OpenAiServerTest.Answer chat = post(server, "/v1/chat/completions", "{\"model\": \"terse\", \"messages\": [{\"role\": \"user\", "
                + "\"content\": \"Hello there\"}], \"max_tokens\": 8, \"temperature\": 0}");
        assertEquals(chatted, chat.body().path("choices").get(0).path("message").path("content").asText());
    }

    @Test
    void anUnknownModelNameIsA404ThatListsTheAdapters() throws Exception {
        OpenAiServerTest.Answer answer = post(server, "/v1/completions", "{\"model\": \"other\", \"prompt\": \"hi\"}");
        assertEquals(404, answer.status());
        assertTrue(answer.body().path("error").path("message").asText().contains("terse"), answer.body().toString());
    }

    /** A PEFT adapter of random rank-4 updates on every projection of the demo model's layers. */
    private static void writeAdapter(Path dir) throws IOException {
        int rank = 4;
        Random random = new Random(5);
        ObjectNode header = JSON.createObjectNode();
        ByteArrayOutputStream data = new ByteArrayOutputStream();
        try (Checkpoint demo = Checkpoint.open(DEMO)) {
            for (String name : demo.names().stream().sorted().toList()) {
                if (!name.startsWith("model.layers.") || !name.endsWith("_proj.weight")) continue;
                WeightTensor t = demo.get(name);
                String module = "base_model.model." + name.substring(0, name.length() - ".weight".length());
                addTensor(header, data, module + ".lora_A.weight", rank, t.dim(1), random);
                addTensor(header, data, module + ".lora_B.weight", t.dim(0), rank, random);
            }
        }
        byte[] json = header.toString().getBytes(StandardCharsets.UTF_8);
        int padded = (json.length + 7) / 8 * 8;
        ByteBuffer file = ByteBuffer.allocate(8 + padded + data.size()).order(ByteOrder.LITTLE_ENDIAN);
        file.putLong(padded).put(json);
        for (int i = json.length; i < padded; i++) file.put((byte) ' ');
        file.put(data.toByteArray());
        Files.write(dir.resolve("adapter_model.safetensors"), file.array());
        Files.writeString(dir.resolve("adapter_config.json"), "{\"peft_type\": \"LORA\", \"r\": " + rank + ", \"lora_alpha\": 16, \"bias\": \"none\"}");
    }

    private static void addTensor(ObjectNode header, ByteArrayOutputStream data, String name, long rows, long cols, Random random) {
        int start = data.size();
        ByteBuffer values = ByteBuffer.allocate((int) (rows * cols * 4)).order(ByteOrder.LITTLE_ENDIAN);
        for (long i = 0; i < rows * cols; i++) values.putFloat((float) (random.nextGaussian() * 0.05));
        data.writeBytes(values.array());
        ObjectNode entry = header.putObject(name).put("dtype", "F32");
        entry.putArray("shape").add(rows).add(cols);
        entry.putArray("data_offsets").add(start).add(data.size());
    }
}
