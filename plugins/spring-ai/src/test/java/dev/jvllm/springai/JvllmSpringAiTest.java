package dev.jvllm.springai;

import dev.jvllm.EmbeddingOutput;
import dev.jvllm.LLM;
import dev.jvllm.PoolingParams;
import dev.jvllm.SamplingParams;
import dev.jvllm.Task;
import org.junit.jupiter.api.Test;
import org.springframework.ai.chat.messages.SystemMessage;
import org.springframework.ai.chat.messages.ToolResponseMessage;
import org.springframework.ai.chat.messages.UserMessage;
import org.springframework.ai.chat.model.ChatResponse;
import org.springframework.ai.chat.prompt.ChatOptions;
import org.springframework.ai.chat.prompt.Prompt;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** jvllm's Spring AI models over the demo model: the library's own answers, through Spring AI's types. */
class JvllmSpringAiTest {

    private static final Path DEMO = Files.isDirectory(Path.of("../../models/jvllm-demo")) ? Path.of("../../models/jvllm-demo")
            : Path.of("models/jvllm-demo");

    private static Prompt hello() {
        return new Prompt(List.of(new SystemMessage("Be brief."), new UserMessage("Hello")),
                ChatOptions.builder().temperature(0.0).maxTokens(8).build());
    }

    private static String expected() {
        try (LLM reference = LLM.builder().model(DEMO.toString()).build()) {
            return reference.chat(List.of(dev.jvllm.ChatMessage.system("Be brief."), dev.jvllm.ChatMessage.user("Hello")),
                    SamplingParams.builder().temperature(0).maxTokens(8).build()).text();
        }
    }

    @Test
    void callsAndStreamsAreTheLibrarysChat() throws Exception {
        String expected = expected();
        try (LLM llm = LLM.builder().model(DEMO.toString()).build(); JvllmSpringChatModel model = new JvllmSpringChatModel(llm)) {
            ChatResponse called = model.call(hello());
            assertEquals(expected, called.getResult().getOutput().getText());
            assertEquals("LENGTH", called.getResult().getMetadata().getFinishReason());
            assertEquals(8, called.getMetadata().getUsage().getCompletionTokens());

            List<ChatResponse> pieces = model.stream(hello()).collectList().block(java.time.Duration.ofSeconds(60));
            StringBuilder streamed = new StringBuilder();
            for (ChatResponse piece : pieces) streamed.append(piece.getResult().getOutput().getText());
            assertEquals(expected, streamed.toString());
            assertEquals("LENGTH", pieces.getLast().getResult().getMetadata().getFinishReason());
            assertEquals(8, pieces.getLast().getMetadata().getUsage().getCompletionTokens());

            // Callers on several threads share the continuous batch, each getting its own answer.
            try (var pool = Executors.newFixedThreadPool(4)) {
                List<Future<String>> answers = new ArrayList<>();
                for (int i = 0; i < 6; i++) answers.add(pool.submit(() -> model.call(hello()).getResult().getOutput().getText()));
                for (Future<String> answer : answers) assertEquals(expected, answer.get(60, TimeUnit.SECONDS));
            }
            assertThrows(UnsupportedOperationException.class, () -> model.call(new Prompt(List.of(new UserMessage("Hi"),
                    ToolResponseMessage.builder().responses(List.of(new ToolResponseMessage.ToolResponse("1", "f", "2"))).build()))));
            var tools = org.springframework.ai.model.tool.ToolCallingChatOptions.builder().toolCallbacks(
                    org.springframework.ai.tool.function.FunctionToolCallback.builder("f", (String x) -> x).inputType(String.class).build()).build();
            assertThrows(UnsupportedOperationException.class, () -> model.call(new Prompt("Weather?", tools)), "tools are refused, not ignored");

            // A stream is made when it is subscribed to: the same Flux subscribed twice answers twice.
            var flux = model.stream(hello());
            for (int i = 0; i < 2; i++) {
                StringBuilder again = new StringBuilder();
                flux.toIterable().forEach(piece -> again.append(piece.getResult().getOutput().getText()));
                assertEquals(expected, again.toString());
            }
            assertThrows(IllegalStateException.class, () -> llm.generate("x", SamplingParams.builder().maxTokens(1).build()),
                    "the LLM is the model's while it is open");
        }
    }

    /** Closing the LLM first closes the model serving it: a later call says the model is closed, nothing crashes. */
    @Test
    void closingTheLlmFirstStopsTheModelServingIt() {
        LLM llm = LLM.builder().model(DEMO.toString()).build();
        JvllmSpringChatModel model = new JvllmSpringChatModel(llm);
        model.call(hello());
        llm.close();
        var closed = assertThrows(IllegalStateException.class, () -> model.call(hello()));
        assertTrue(closed.getMessage().contains("closed"), closed.getMessage());
        model.close(); // idempotent after the LLM closed it
    }

    @Test
    void closingTheModelLeavesTheLlmUsable() {
        String expected = expected();
        try (LLM llm = LLM.builder().model(DEMO.toString()).build()) {
            ChatOptions defaults = ChatOptions.builder().maxTokens(5).build();
            try (JvllmSpringChatModel model = new JvllmSpringChatModel(llm, defaults)) {
                assertEquals(5, model.getOptions().getMaxTokens());
                model.call(hello());
            }
            assertEquals(expected, llm.chat(List.of(dev.jvllm.ChatMessage.system("Be brief."), dev.jvllm.ChatMessage.user("Hello")),
                    SamplingParams.builder().temperature(0).maxTokens(8).build()).text());
        }
    }

    @Test
    void textsAreEmbeddedAsTheLibraryEmbedsThem() {
        try (LLM embedder = LLM.builder().model(DEMO.toString()).task(Task.EMBED).build()) {
            List<String> texts = List.of("The European Parliament", "Mr President");
            List<EmbeddingOutput> expected = embedder.embed(texts, PoolingParams.defaults());
            List<float[]> embeddings = new JvllmSpringEmbeddingModel(embedder).embed(texts);
            assertEquals(2, embeddings.size());
            for (int i = 0; i < 2; i++) assertArrayEquals(expected.get(i).embedding(), embeddings.get(i), 1e-5f, "text " + i);
        }
    }
}
