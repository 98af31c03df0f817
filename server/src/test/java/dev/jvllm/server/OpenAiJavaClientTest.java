package dev.jvllm.server;

import com.openai.client.OpenAIClient;
import com.openai.client.okhttp.OpenAIOkHttpClient;
import com.openai.core.http.StreamResponse;
import com.openai.models.chat.completions.ChatCompletion;
import com.openai.models.chat.completions.ChatCompletionChunk;
import com.openai.models.chat.completions.ChatCompletionCreateParams;
import com.openai.models.responses.Response;
import com.openai.models.responses.ResponseCreateParams;
import com.openai.models.responses.ResponseStreamEvent;
import dev.jvllm.ChatMessage;
import dev.jvllm.LLM;
import dev.jvllm.RequestOutput;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.util.List;

import static dev.jvllm.server.OpenAiServerTest.DEMO;
import static dev.jvllm.server.OpenAiServerTest.greedy;
import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * The server through OpenAI's own Java client (com.openai:openai-java): its chat completions, their
 * stream and the Responses API parse and pass the SDK's validation, and hold the library's answers.
 */
class OpenAiJavaClientTest {

    private static OpenAiServer server;
    private static LLM reference;
    private static OpenAIClient client;

    @BeforeAll
    static void start() throws Exception {
        server = OpenAiServer.builder(LLM.builder().model(DEMO.toString()).build()).port(0).servedModelName("demo").start();
        reference = LLM.builder().model(DEMO.toString()).build();
        client = OpenAIOkHttpClient.builder().baseUrl(server.address() + "/v1").apiKey("unused").maxRetries(0).build();
    }

    @AfterAll
    static void stop() {
        client.close();
        server.close();
        reference.close();
    }

    @Test
    void chatCompletionsWholeAndStreamed() {
        RequestOutput expected = reference.chat(List.of(ChatMessage.user("Hello")), greedy(8));
        ChatCompletionCreateParams params = ChatCompletionCreateParams.builder().model("demo").addUserMessage("Hello")
                .maxCompletionTokens(8).temperature(0.0).build();
        ChatCompletion completion = client.chat().completions().create(params);
        completion.validate();
        assertEquals(expected.text(), completion.choices().getFirst().message().content().orElseThrow());
        assertEquals(8, completion.usage().orElseThrow().completionTokens());

        StringBuilder streamed = new StringBuilder();
        try (StreamResponse<ChatCompletionChunk> chunks = client.chat().completions().createStreaming(params)) {
            chunks.stream().forEach(chunk -> {
                chunk.validate();
                chunk.choices().forEach(choice -> choice.delta().content().ifPresent(streamed::append));
            });
        }
        assertEquals(expected.text(), streamed.toString());

        // With the usage asked for, the stream ends with a chunk of no choices and the usage.
        long[] usageTokens = {-1};
        try (StreamResponse<ChatCompletionChunk> chunks = client.chat().completions().createStreaming(params.toBuilder()
                .streamOptions(com.openai.models.chat.completions.ChatCompletionStreamOptions.builder().includeUsage(true).build()).build())) {
            chunks.stream().forEach(chunk -> {
                chunk.validate();
                chunk.usage().ifPresent(usage -> usageTokens[0] = usage.completionTokens());
            });
        }
        assertEquals(8, usageTokens[0]);
    }

    @Test
    void responsesWholeAndStreamed() {
        RequestOutput expected = reference.chat(List.of(ChatMessage.user("Hello")), greedy(8));
        ResponseCreateParams params = ResponseCreateParams.builder().model("demo").input("Hello").maxOutputTokens(8L)
                .temperature(0.0).build();
        Response response = client.responses().create(params);
        response.validate();
        String text = response.output().getFirst().asMessage().content().getFirst().asOutputText().text();
        assertEquals(expected.text(), text);

        StringBuilder streamed = new StringBuilder();
        try (StreamResponse<ResponseStreamEvent> events = client.responses().createStreaming(params)) {
            events.stream().forEach(event -> {
                event.validate();
                event.outputTextDelta().ifPresent(delta -> streamed.append(delta.delta()));
            });
        }
        assertEquals(expected.text(), streamed.toString());
    }

    @Test
    void completionsAndChatLogprobsPassTheClientsValidation() {
        var completion = client.completions().create(com.openai.models.completions.CompletionCreateParams.builder().model("demo")
                .prompt("The European Parliament").maxTokens(4L).temperature(0.0).logprobs(2L).build());
        completion.validate();
        assertEquals(reference.generate("The European Parliament", greedy(4)).text(), completion.choices().getFirst().text());

        ChatCompletion withLogprobs = client.chat().completions().create(ChatCompletionCreateParams.builder().model("demo")
                .addUserMessage("Hello").maxCompletionTokens(3).temperature(0.0).logprobs(true).topLogprobs(2L).build());
        withLogprobs.validate();
        assertEquals(3, withLogprobs.choices().getFirst().logprobs().orElseThrow().content().orElseThrow().size());
    }

    @Test
    void embeddingsPassTheClientsValidation() throws Exception {
        try (OpenAiServer embedding = OpenAiServer.builder(LLM.builder().model(DEMO.toString()).task(dev.jvllm.Task.EMBED).build())
                .port(0).servedModelName("demo-embed").start()) {
            OpenAIClient embeddingClient = OpenAIOkHttpClient.builder().baseUrl(embedding.address() + "/v1").apiKey("unused")
                    .maxRetries(0).build();
            try {
                var embeddings = embeddingClient.embeddings().create(com.openai.models.embeddings.EmbeddingCreateParams.builder()
                        .model("demo-embed").input("Hello").build());
                embeddings.validate();
                assertEquals(1, embeddings.data().size());
                org.junit.jupiter.api.Assertions.assertFalse(embeddings.data().getFirst().embedding().isEmpty());
            } finally {
                embeddingClient.close();
            }
        }
    }

    /** A named function's call, whole and streamed, as the client reads tool calls: its arguments fit the function's schema. */
    @Test
    void toolCallsPassTheClientsValidation() throws Exception {
        com.openai.models.FunctionParameters parameters = com.openai.models.FunctionParameters.builder()
                .putAdditionalProperty("type", com.openai.core.JsonValue.from("object"))
                .putAdditionalProperty("properties", com.openai.core.JsonValue.from(java.util.Map.of("city",
                        java.util.Map.of("enum", List.of("Paris", "Rome")))))
                .putAdditionalProperty("required", com.openai.core.JsonValue.from(List.of("city")))
                .build();
        ChatCompletionCreateParams params = ChatCompletionCreateParams.builder().model("demo").addUserMessage("Weather?")
                .addFunctionTool(com.openai.models.FunctionDefinition.builder().name("get_weather").parameters(parameters).build())
                .toolChoice(com.openai.models.chat.completions.ChatCompletionNamedToolChoice.builder()
                        .function(com.openai.models.chat.completions.ChatCompletionNamedToolChoice.Function.builder().name("get_weather").build())
                        .build())
                .maxCompletionTokens(60).temperature(0.8).seed(2L).build();
        ChatCompletion called = client.chat().completions().create(params);
        called.validate();
        var call = called.choices().getFirst().message().toolCalls().orElseThrow().getFirst().asFunction();
        assertEquals("get_weather", call.function().name());
        String city = OpenAiResponses.JSON.readTree(call.function().arguments()).path("city").asText();
        org.junit.jupiter.api.Assertions.assertTrue(List.of("Paris", "Rome").contains(city), call.function().arguments());

        StringBuilder arguments = new StringBuilder();
        try (StreamResponse<ChatCompletionChunk> chunks = client.chat().completions().createStreaming(params)) {
            chunks.stream().forEach(chunk -> {
                chunk.validate();
                chunk.choices().forEach(choice -> choice.delta().toolCalls().ifPresent(list -> list.forEach(
                        c -> c.function().flatMap(f -> f.arguments()).ifPresent(arguments::append))));
            });
        }
        assertEquals(OpenAiResponses.JSON.readTree(call.function().arguments()), OpenAiResponses.JSON.readTree(arguments.toString()),
                "the same seed streams the same call");
    }

    /** A named function's call through the Responses API, whole and streamed, as the client reads function calls. */
    @Test
    void responsesFunctionCallsPassTheClientsValidation() throws Exception {
        ResponseCreateParams params = ResponseCreateParams.builder().model("demo").input("Weather?").maxOutputTokens(60L).temperature(0.8)
                .addTool(com.openai.models.responses.FunctionTool.builder().name("get_weather").strict(false)
                        .parameters(com.openai.models.responses.FunctionTool.Parameters.builder()
                                .putAdditionalProperty("type", com.openai.core.JsonValue.from("object"))
                                .putAdditionalProperty("properties", com.openai.core.JsonValue.from(java.util.Map.of("city",
                                        java.util.Map.of("enum", List.of("Paris", "Rome")))))
                                .putAdditionalProperty("required", com.openai.core.JsonValue.from(List.of("city")))
                                .build())
                        .build())
                .toolChoice(com.openai.models.responses.ToolChoiceFunction.builder().name("get_weather").build())
                .putAdditionalBodyProperty("seed", com.openai.core.JsonValue.from(2))
                .build();
        Response response = client.responses().create(params);
        response.validate();
        var call = response.output().getFirst().asFunctionCall();
        assertEquals("get_weather", call.name());
        String city = OpenAiResponses.JSON.readTree(call.arguments()).path("city").asText();
        org.junit.jupiter.api.Assertions.assertTrue(List.of("Paris", "Rome").contains(city), call.arguments());

        StringBuilder arguments = new StringBuilder();
        try (StreamResponse<ResponseStreamEvent> events = client.responses().createStreaming(params)) {
            events.stream().forEach(event -> {
                event.validate();
                event.functionCallArgumentsDelta().ifPresent(delta -> arguments.append(delta.delta()));
            });
        }
        assertEquals(OpenAiResponses.JSON.readTree(call.arguments()), OpenAiResponses.JSON.readTree(arguments.toString()));
    }

    /** A thinking model's reasoning item (served with a reasoning parser), whole and streamed, through the client's validation. */
    @Test
    void reasoningItemsPassTheClientsValidation() throws Exception {
        try (OpenAiServer thinking = OpenAiServer.builder(LLM.builder().model(DEMO.toString()).build()).port(0).servedModelName("demo")
                .reasoningParser("deepseek_r1").start()) {
            OpenAIClient thinkingClient = OpenAIOkHttpClient.builder().baseUrl(thinking.address() + "/v1").apiKey("unused").maxRetries(0).build();
            try {
                ResponseCreateParams params = ResponseCreateParams.builder().model("demo").input("Why?").maxOutputTokens(6L).temperature(0.0).build();
                Response response = thinkingClient.responses().create(params);
                response.validate();
                org.junit.jupiter.api.Assertions.assertTrue(response.output().getFirst().isReasoning(), response.toString());
                try (StreamResponse<ResponseStreamEvent> events = thinkingClient.responses().createStreaming(params)) {
                    events.stream().forEach(ResponseStreamEvent::validate);
                }
            } finally {
                thinkingClient.close();
            }
        }
    }

    @Test
    void modelsAreListed() {
        var models = client.models().list();
        assertEquals("demo", models.data().getFirst().id());
    }
}
