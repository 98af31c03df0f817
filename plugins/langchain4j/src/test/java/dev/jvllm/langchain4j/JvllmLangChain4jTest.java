package dev.jvllm.langchain4j;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.jvllm.EmbeddingOutput;
import dev.jvllm.LLM;
import dev.jvllm.PoolingParams;
import dev.jvllm.RequestOutput;
import dev.jvllm.SamplingParams;
import dev.jvllm.Task;
import dev.jvllm.ToolCallParser;
import dev.langchain4j.agent.tool.ToolSpecification;
import dev.langchain4j.model.chat.request.ToolChoice;
import dev.langchain4j.data.message.ToolExecutionResultMessage;
import dev.langchain4j.agent.tool.ToolExecutionRequest;
import dev.langchain4j.data.embedding.Embedding;
import dev.langchain4j.data.message.AiMessage;
import dev.langchain4j.data.message.SystemMessage;
import dev.langchain4j.data.message.UserMessage;
import dev.langchain4j.data.segment.TextSegment;
import dev.langchain4j.exception.UnsupportedFeatureException;
import dev.langchain4j.model.chat.ChatModel;
import dev.langchain4j.model.chat.request.ChatRequest;
import dev.langchain4j.model.chat.request.ChatRequestParameters;
import dev.langchain4j.model.chat.request.ResponseFormat;
import dev.langchain4j.model.chat.request.ResponseFormatType;
import dev.langchain4j.model.chat.request.json.JsonObjectSchema;
import dev.langchain4j.model.chat.request.json.JsonSchema;
import dev.langchain4j.model.chat.response.ChatResponse;
import dev.langchain4j.model.chat.response.StreamingChatResponseHandler;
import dev.langchain4j.model.output.FinishReason;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** jvllm's LangChain4j models over the demo model: the library's own answers, through LangChain4j's types. */
class JvllmLangChain4jTest {

    private static final Path DEMO = Files.isDirectory(Path.of("../../models/jvllm-demo")) ? Path.of("../../models/jvllm-demo")
            : Path.of("models/jvllm-demo");
    private static LLM llm;
    private static final ToolSpecification WEATHER = ToolSpecification.builder().name("get_weather").description("The weather in a city")
            .parameters(JsonObjectSchema.builder().addEnumProperty("city", List.of("Paris", "Rome")).required("city").build()).build();

    @BeforeAll
    static void load() {
        llm = LLM.builder().model(DEMO.toString()).build();
    }

    @AfterAll
    static void close() {
        llm.close();
    }

    private static ChatRequest hello(ChatRequestParameters parameters) {
        return ChatRequest.builder().messages(List.of(SystemMessage.from("Be brief."), UserMessage.from("Hello"))).parameters(parameters).build();
    }

    private static RequestOutput expected() {
        return llm.chat(List.of(dev.jvllm.ChatMessage.system("Be brief."), dev.jvllm.ChatMessage.user("Hello")),
                SamplingParams.builder().temperature(0).maxTokens(8).build());
    }

    @Test
    void aChatIsTheLibrarysChatWithItsUsage() {
        RequestOutput expected = expected();
        ChatModel model = new JvllmChatModel(llm);
        ChatResponse response = model.chat(hello(ChatRequestParameters.builder().temperature(0.0).maxOutputTokens(8).build()));
        assertEquals(expected.text(), response.aiMessage().text());
        assertEquals(FinishReason.LENGTH, response.finishReason());
        assertEquals(expected.promptTokenIds().size(), response.tokenUsage().inputTokenCount());
        assertEquals(8, response.tokenUsage().outputTokenCount());
    }

    /** Callers sharing one model from several threads take turns: each gets the answer it would get alone. */
    @Test
    void concurrentCallersEachGetTheirOwnAnswer() throws Exception {
        String expected = expected().text();
        ChatModel model = new JvllmChatModel(llm);
        try (var pool = java.util.concurrent.Executors.newFixedThreadPool(4)) {
            List<java.util.concurrent.Future<String>> answers = new java.util.ArrayList<>();
            for (int i = 0; i < 8; i++) {
                answers.add(pool.submit(() -> model.chat(hello(ChatRequestParameters.builder().temperature(0.0).maxOutputTokens(8).build()))
                        .aiMessage().text()));
            }
            for (var answer : answers) assertEquals(expected, answer.get(60, TimeUnit.SECONDS));
        }
    }

    @Test
    void aJsonFormatHoldsTheAnswerToItsSchemaAndToolsAreRefused() throws Exception {
        ChatModel model = new JvllmChatModel(llm);
        ResponseFormat format = ResponseFormat.builder().type(ResponseFormatType.JSON).jsonSchema(JsonSchema.builder().name("place")
                .rootElement(JsonObjectSchema.builder().addEnumProperty("city", List.of("Paris", "Rome")).required("city").build()).build())
                .build();
        ChatResponse place = model.chat(hello(ChatRequestParameters.builder().temperature(0.7).maxOutputTokens(60).responseFormat(format).build()));
        String city = new ObjectMapper().readTree(place.aiMessage().text()).path("city").asText();
        assertTrue(List.of("Paris", "Rome").contains(city), place.aiMessage().text());

        var auto = ChatRequestParameters.builder().toolSpecifications(ToolSpecification.builder().name("get_time").build()).build();
        var refused = assertThrows(UnsupportedFeatureException.class, () -> model.chat(hello(auto)));
        assertTrue(refused.getMessage().contains("tool-call parser"), refused.getMessage());
    }

    /**
     * Tool choice REQUIRED over the demo model: the tools reach the template and the answer is held to
     * calls of the offered function with arguments its schema allows. The demo model lists calls until
     * it runs out of tokens, and an unclosed list comes back as text, as the server answers it.
     */
    @Test
    void requiredToolCallsAreHeldToTheOfferedFunctions() throws Exception {
        ChatModel model = new JvllmChatModel(llm);
        ChatResponse called = model.chat(ChatRequest.builder().messages(List.of(UserMessage.from("Weather in Paris?")))
                .parameters(ChatRequestParameters.builder().temperature(0.0).maxOutputTokens(60).toolSpecifications(WEATHER)
                        .toolChoice(ToolChoice.REQUIRED).build()).build());
        assertEquals(FinishReason.LENGTH, called.finishReason());
        String listed = called.aiMessage().text().strip();
        assertTrue(listed.startsWith("[ { \"name\" : \"get_weather\" , \"parameters\" : { \"city\" : \""), listed);
        assertTrue(listed.replaceAll("\"(Paris|Rome)\"", "").replaceAll("\"(name|parameters|city|get_weather)\"", "")
                .chars().noneMatch(Character::isLetter), "only the offered function and cities: " + listed);
    }

    /** Answers holding calls become execution requests: a closed list (REQUIRED), or what a parser finds (AUTO). */
    @Test
    void callsInAnAnswerBecomeExecutionRequests() {
        ChatResponse listed = Conversions.response("[{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Rome\"}}]",
                new Conversions.Listed(), 10, 5, dev.jvllm.FinishReason.STOP, "m");
        assertEquals(FinishReason.TOOL_EXECUTION, listed.finishReason());
        ToolExecutionRequest request = listed.aiMessage().toolExecutionRequests().getFirst();
        assertEquals("get_weather", request.name());
        assertEquals("{\"city\":\"Rome\"}", request.arguments());
        assertTrue(request.id().startsWith("call_"));

        ChatResponse parsed = Conversions.response("Let me look.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}"
                + "\n</tool_call>", new Conversions.Parsed(ToolCallParser.HERMES), 10, 20, dev.jvllm.FinishReason.STOP, "m");
        assertEquals("Let me look.", parsed.aiMessage().text());
        assertEquals("get_weather", parsed.aiMessage().toolExecutionRequests().getFirst().name());

        ChatResponse text = Conversions.response("It is sunny.", new Conversions.Parsed(ToolCallParser.HERMES), 10, 4,
                dev.jvllm.FinishReason.STOP, "m");
        assertEquals(FinishReason.STOP, text.finishReason());
        assertEquals("It is sunny.", text.aiMessage().text());
    }

    /**
     * A conversation holding a call and its result, with the tools, renders as the template has them:
     * the prompt is exactly the rendering of the tools, the call and the result (a template that
     * writes them out, given in place of the demo model's, which ignores tools).
     */
    @Test
    void aConversationHoldingCallsAndResultsRendersThemForTheTemplate() {
        String template = "{% for t in tools %}[tool {{ t.function.name }}]{% endfor %}{% for m in messages %}<{{ m.role }}>{{ m.content }}"
                + "{% if m.tool_calls %}{% for c in m.tool_calls %}[call {{ c.id }} {{ c.function.name }} {{ c.function.arguments | tojson }}]"
                + "{% endfor %}{% endif %}{% endfor %}<assistant>";
        ToolExecutionRequest call = ToolExecutionRequest.builder().id("call_1").name("get_weather").arguments("{\"city\": \"Paris\"}").build();
        try (LLM templated = LLM.builder().model(DEMO.toString()).chatTemplate(template).build()) {
            ChatModel model = new JvllmChatModel(templated, ToolCallParser.HERMES);
            ChatResponse answered = model.chat(ChatRequest.builder().messages(List.of(UserMessage.from("Weather in Paris?"), AiMessage.from(call),
                    ToolExecutionResultMessage.from(call, "18 C"))).parameters(ChatRequestParameters.builder().temperature(0.0)
                    .maxOutputTokens(4).toolSpecifications(WEATHER).build()).build());
            String rendered = "[tool get_weather]<user>Weather in Paris?<assistant>[call call_1 get_weather {\"city\": \"Paris\"}]<tool>18 C<assistant>";
            assertEquals(templated.tokenizer().encode(rendered, false).length, answered.tokenUsage().inputTokenCount(),
                    "the prompt is the rendering of the tools, the call and its result");
        }
    }

    /**
     * The streaming model serves the LLM until it is closed: the LLM's own calls and a chat model over
     * it are refused meanwhile, and work again after; a handler that throws gets onError.
     */
    @Test
    void aStreamingModelLendsTheLlmBackWhenClosedAndReportsAHandlersFailure() throws Exception {
        try (LLM own = LLM.builder().model(DEMO.toString()).build()) {
            JvllmStreamingChatModel streaming = new JvllmStreamingChatModel(own);
            var refused = assertThrows(IllegalStateException.class, () -> new JvllmChatModel(own).chat("Hello"));
            assertTrue(refused.getMessage().contains("serveAsync"), refused.getMessage());
            CompletableFuture<Throwable> failure = new CompletableFuture<>();
            streaming.chat(hello(ChatRequestParameters.builder().temperature(0.0).maxOutputTokens(8).build()), new StreamingChatResponseHandler() {
                @Override
                public void onPartialResponse(String partial) {
                    throw new IllegalArgumentException("the handler's own failure");
                }

                @Override
                public void onCompleteResponse(ChatResponse response) {
                    failure.complete(null);
                }

                @Override
                public void onError(Throwable error) {
                    failure.complete(error);
                }
            });
            assertEquals("the handler's own failure", failure.get(60, TimeUnit.SECONDS).getMessage());
            streaming.close();
            assertEquals(expected().text(), own.chat(List.of(dev.jvllm.ChatMessage.system("Be brief."), dev.jvllm.ChatMessage.user("Hello")),
                    SamplingParams.builder().temperature(0).maxTokens(8).build()).text(), "the LLM answers again once the model is closed");
        }
    }

    /** A handler that cancels through its streaming handle stops the request: it hears nothing more, and the model serves on. */
    @Test
    void aHandlerCancelsThroughItsStreamingHandle() throws Exception {
        try (LLM own = LLM.builder().model(DEMO.toString()).build(); JvllmStreamingChatModel model = new JvllmStreamingChatModel(own)) {
            java.util.concurrent.atomic.AtomicInteger pieces = new java.util.concurrent.atomic.AtomicInteger();
            CompletableFuture<String> after = new CompletableFuture<>();
            model.chat(hello(ChatRequestParameters.builder().temperature(0.0).maxOutputTokens(200).build()), new StreamingChatResponseHandler() {
                @Override
                public void onPartialResponse(dev.langchain4j.model.chat.response.PartialResponse partial,
                                              dev.langchain4j.model.chat.response.PartialResponseContext context) {
                    pieces.incrementAndGet();
                    context.streamingHandle().cancel();
                }

                @Override
                public void onCompleteResponse(ChatResponse response) {
                    after.complete("completed after the cancel");
                }

                @Override
                public void onError(Throwable error) {
                    after.complete("failed after the cancel: " + error);
                }
            });
            // The model serves on: a later chat answers whole, over steps in which the cancelled one, had it
            // run on (up to 200 tokens), would have sent more pieces.
            Collected next = new Collected();
            model.chat(hello(ChatRequestParameters.builder().temperature(0.0).maxOutputTokens(8).build()), next);
            assertEquals(expected().text(), next.response().aiMessage().text());
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
            while (model.engine().metrics().running() + model.engine().metrics().waiting() > 0 && System.nanoTime() < deadline) {
                Thread.sleep(10);
            }
            assertTrue(model.engine().metrics().generatedTokens() < 100, "the cancelled request was aborted, not run to its 200 tokens: "
                    + model.engine().metrics().generatedTokens() + " tokens generated in all");
            assertEquals(1, pieces.get(), "one piece, then nothing");
            assertTrue(!after.isDone(), String.valueOf(after.getNow(null)));
        }
    }

    /** With tools and a parser, an answer that holds no call streams whole: what was held back comes before the response. */
    @Test
    void anAnswerWithoutCallsStreamsWholeUnderToolChoiceAuto() throws Exception {
        try (LLM own = LLM.builder().model(DEMO.toString()).build();
             JvllmStreamingChatModel model = new JvllmStreamingChatModel(own, ChatRequestParameters.builder().build(), ToolCallParser.HERMES)) {
            Collected collected = new Collected();
            model.chat(ChatRequest.builder().messages(List.of(UserMessage.from("Weather in Paris?"))).parameters(ChatRequestParameters.builder()
                    .temperature(0.0).maxOutputTokens(12).toolSpecifications(WEATHER).build()).build(), collected);
            ChatResponse response = collected.response();
            StringBuilder partials = collected.partials;
            assertTrue(!response.aiMessage().hasToolExecutionRequests(), response.toString());
            assertEquals(response.aiMessage().text(), partials.toString());
        }
    }

    @Test
    void aStreamedChatHandsOverTheTextAsItComesThenTheWholeResponse() throws Exception {
        RequestOutput expected = expected();
        try (LLM own = LLM.builder().model(DEMO.toString()).build();
             JvllmStreamingChatModel model = new JvllmStreamingChatModel(own)) {
            Collected collected = new Collected();
            model.chat(hello(ChatRequestParameters.builder().temperature(0.0).maxOutputTokens(8).build()), collected);
            ChatResponse response = collected.response();
            StringBuilder partials = collected.partials;
            assertEquals(expected.text(), partials.toString());
            assertEquals(expected.text(), response.aiMessage().text());
            assertEquals(8, response.tokenUsage().outputTokenCount());
            assertEquals(FinishReason.LENGTH, response.finishReason());
        }
    }

    @Test
    void segmentsAreEmbeddedAsTheLibraryEmbedsThem() {
        try (LLM embedder = LLM.builder().model(DEMO.toString()).task(Task.EMBED).build()) {
            List<String> texts = List.of("The European Parliament", "Mr President");
            List<EmbeddingOutput> expected = embedder.embed(texts, PoolingParams.defaults());
            List<Embedding> embeddings = new JvllmEmbeddingModel(embedder).embedAll(texts.stream().map(TextSegment::from).toList()).content();
            assertEquals(2, embeddings.size());
            for (int i = 0; i < 2; i++) assertArrayEquals(expected.get(i).embedding(), embeddings.get(i).vector(), 1e-5f, "text " + i);
        }
    }

    /** A handler that keeps the partial texts and completes with the response (or the error). */
    private static class Collected implements StreamingChatResponseHandler {
        final StringBuilder partials = new StringBuilder();
        final CompletableFuture<ChatResponse> done = new CompletableFuture<>();

        @Override
        public void onPartialResponse(String partial) {
            partials.append(partial);
        }

        @Override
        public void onCompleteResponse(ChatResponse response) {
            done.complete(response);
        }

        @Override
        public void onError(Throwable error) {
            done.completeExceptionally(error);
        }

        ChatResponse response() throws Exception {
            return done.get(60, TimeUnit.SECONDS);
        }
    }
}
