package dev.jvllm.springai;

import dev.jvllm.EmbeddingOutput;
import dev.jvllm.LLM;
import dev.jvllm.PoolingParams;
import dev.jvllm.SamplingParams;
import dev.jvllm.Task;
import org.junit.jupiter.api.Test;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.jvllm.ToolCallParser;
import org.springframework.ai.chat.messages.AssistantMessage;
import org.springframework.ai.chat.messages.Message;
import org.springframework.ai.chat.messages.MessageType;
import org.springframework.ai.chat.messages.SystemMessage;
import org.springframework.ai.chat.messages.UserMessage;
import org.springframework.ai.chat.model.ChatResponse;
import org.springframework.ai.chat.prompt.ChatOptions;
import org.springframework.ai.chat.prompt.Prompt;
import org.springframework.ai.model.tool.DefaultToolCallingManager;
import org.springframework.ai.model.tool.StructuredOutputChatOptions;
import org.springframework.ai.model.tool.ToolCallingChatOptions;
import org.springframework.ai.model.tool.ToolExecutionResult;
import org.springframework.ai.tool.ToolCallback;
import org.springframework.ai.tool.function.FunctionToolCallback;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** jvllm's Spring AI models over the demo model: the library's own answers, through Spring AI's types. */
class JvllmSpringAiTest {

    private static final ObjectMapper JSON = new ObjectMapper();

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
            var tools = ToolCallingChatOptions.builder().toolCallbacks(
                    FunctionToolCallback.builder("f", (String x) -> x).inputType(String.class).build()).build();
            var refused = assertThrows(UnsupportedOperationException.class, () -> model.call(new Prompt("Weather?", tools)),
                    "without a tool-call parser, tools are refused, not ignored");
            assertTrue(refused.getMessage().contains("ToolCallParser"), refused.getMessage());

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
            // The request's options reach the pooling: a Matryoshka-less model refuses dimensions rather than ignoring them.
            var response = new JvllmSpringEmbeddingModel(embedder).call(new org.springframework.ai.embedding.EmbeddingRequest(texts, null));
            assertEquals(expected.get(0).promptTokenIds().length + expected.get(1).promptTokenIds().length,
                    response.getMetadata().getUsage().getPromptTokens());
            assertThrows(dev.jvllm.InvalidRequestException.class, () -> new JvllmSpringEmbeddingModel(embedder).call(
                    new org.springframework.ai.embedding.EmbeddingRequest(texts, org.springframework.ai.embedding.EmbeddingOptions.builder()
                            .dimensions(8).build())));
        }
    }

    /** A city's weather, the tool of the tests below. */
    record City(String city) {
    }

    private static ToolCallback weatherTool(List<String> asked) {
        return FunctionToolCallback.builder("get_weather", (City c) -> {
            asked.add(c.city());
            return "sunny in " + c.city();
        }).description("The weather in a city").inputType(City.class).build();
    }

    /**
     * An answer that is a call, as Llama 3.1 writes one (held to that form here by an output schema, since
     * the demo model chooses no tools), comes back as the assistant's tool call, in a call and in a stream;
     * Spring AI's own tool-calling manager runs it, and the conversation with its result renders as the
     * chat template renders the same messages given to the library.
     */
    @Test
    void toolCallsComeBackAsTheAssistantsCallsAndTheirResultsRender() {
        List<String> asked = new ArrayList<>();
        ToolCallback weather = weatherTool(asked);
        try (LLM llm = LLM.builder().model(DEMO.toString()).chatTemplate(TOOLS_TEMPLATE).build();
             JvllmSpringChatModel model = new JvllmSpringChatModel(llm, StructuredOutputChatOptions.builder().outputSchema(CALL_SCHEMA).build(),
                     ToolCallParser.LLAMA3_JSON)) {
            Prompt question = new Prompt(List.of(new UserMessage("Weather in Paris?")),
                    ToolCallingChatOptions.builder().toolCallbacks(weather).temperature(0.0).maxTokens(120).build());
            ChatResponse called = model.call(question);
            AssistantMessage answer = called.getResult().getOutput();
            assertEquals("TOOL_CALLS", called.getResult().getMetadata().getFinishReason(), answer.toString());
            assertEquals(1, answer.getToolCalls().size(), answer.toString());
            AssistantMessage.ToolCall call = answer.getToolCalls().getFirst();
            assertEquals("get_weather", call.name());
            assertEquals("function", call.type());
            assertTrue(call.arguments().matches("\\{\"city\":\"(Paris|Rome|Berlin)\"}"), call.arguments());

            // Streamed: no text goes out before the call (the answer starts as one), so one response, with the same call.
            List<ChatResponse> pieces = model.stream(question).collectList().block(java.time.Duration.ofSeconds(60));
            assertEquals(1, pieces.size(), pieces.toString());
            AssistantMessage last = pieces.getLast().getResult().getOutput();
            assertEquals("TOOL_CALLS", pieces.getLast().getResult().getMetadata().getFinishReason());
            assertEquals(call.arguments(), last.getToolCalls().getFirst().arguments());

            // Spring AI runs the tool; its result goes back as a tool response message.
            ToolExecutionResult executed = DefaultToolCallingManager.builder().build().executeToolCalls(question, called);
            String city = call.arguments().replaceAll(".*\"city\":\"(\\w+)\".*", "$1");
            assertEquals(List.of(city), asked, "the tool ran once, with the model's argument");
            List<Message> history = executed.conversationHistory();
            assertEquals(3, history.size(), history.toString());
            assertEquals(MessageType.TOOL, history.getLast().getMessageType());
            // The conversation with the call and its result is the prompt the library renders from the same messages.
            String expected = llm.renderChat(List.of(Map.of("role", "user", "content", "Weather in Paris?"),
                    Map.of("role", "assistant", "content", "", "tool_calls", List.of(Map.of("id", call.id(), "type", "function",
                            "function", Map.of("name", "get_weather", "arguments", call.arguments())))),
                    Map.of("role", "tool", "content", "\"sunny in " + city + "\"", "tool_call_id", call.id(), "name", "get_weather")),
                    dev.jvllm.ChatOptions.builder().templateVariable("tools", List.of(Map.of("type", "function", "function",
                            Map.of("name", "get_weather", "description", "The weather in a city", "parameters",
                                    JSON.readValue(weather.getToolDefinition().inputSchema(), Map.class))))).build());
            assertTrue(expected.contains("sunny in " + city) && expected.contains("get_weather"), expected);
            ChatResponse followUp = model.call(new Prompt(history, ToolCallingChatOptions.builder().toolCallbacks(weather)
                    .temperature(0.0).maxTokens(40).build()));
            assertEquals(llm.tokenizer().encode(expected, false).length, followUp.getMetadata().getUsage().getPromptTokens(),
                    "the follow-up's prompt is the rendered conversation with the call and its result");
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }

    /** Llama 3.1's form of a call of get_weather, as a JSON schema that holds the demo model to it. */
    private static final String CALL_SCHEMA = """
            {"type": "object", "properties": {"name": {"const": "get_weather"}, "parameters": {"type": "object",
             "properties": {"city": {"enum": ["Paris", "Rome", "Berlin"]}}, "required": ["city"], "additionalProperties": false}},
             "required": ["name", "parameters"], "additionalProperties": false}""";

    /**
     * Through ChatClient, as Spring AI applications call models: a request's tools reach the model (its
     * defaults are tool-calling options that ChatClient adds them to), the call the answer holds is run by
     * ChatClient's tool-calling advisor, and a tool that returns directly ends the exchange with its result.
     */
    @Test
    void chatClientsToolAdvisorRunsTheCallTheAnswerHolds() {
        List<String> asked = new ArrayList<>();
        ToolCallback weather = FunctionToolCallback.builder("get_weather", (City c) -> {
            asked.add(c.city());
            return "sunny in " + c.city();
        }).description("The weather in a city").inputType(City.class)
                .toolMetadata(org.springframework.ai.tool.metadata.ToolMetadata.builder().returnDirect(true).build()).build();
        try (LLM llm = LLM.builder().model(DEMO.toString()).chatTemplate(TOOLS_TEMPLATE).build();
             JvllmSpringChatModel model = new JvllmSpringChatModel(llm,
                     JvllmSpringChatOptions.builder().outputSchema(CALL_SCHEMA).temperature(0.0).maxTokens(120).build(), ToolCallParser.LLAMA3_JSON)) {
            String content = org.springframework.ai.chat.client.ChatClient.create(model).prompt("Weather in Paris?").tools(weather).call().content();
            assertEquals(1, asked.size(), "the advisor ran the tool once");
            assertTrue(content.contains("sunny in " + asked.getFirst()), content);
        }
        // Without a tool-call parser the same request is refused rather than answered without its tools.
        try (LLM llm = LLM.builder().model(DEMO.toString()).build(); JvllmSpringChatModel model = new JvllmSpringChatModel(llm)) {
            var client = org.springframework.ai.chat.client.ChatClient.create(model);
            assertThrows(UnsupportedOperationException.class, () -> client.prompt("Weather in Paris?").tools(weather).call().content());
        }
    }

    /** The options keep every field through their builder, mutate and conversion from Spring AI's own options. */
    @Test
    void optionsKeepEveryField() {
        ToolCallback weather = weatherTool(new ArrayList<>());
        JvllmSpringChatOptions options = JvllmSpringChatOptions.builder().model("m").frequencyPenalty(0.1).presencePenalty(0.2).maxTokens(7)
                .stopSequences(List.of("x")).temperature(0.3).topK(5).topP(0.9).toolCallbacks(List.of(weather)).toolContext(Map.of("k", "v"))
                .outputSchema("{}").build();
        assertEquals(List.of("m", 0.1, 0.2, 7, List.of("x"), 0.3, 5, 0.9, List.of(weather), Map.of("k", "v"), "{}"),
                List.of(options.getModel(), options.getFrequencyPenalty(), options.getPresencePenalty(), options.getMaxTokens(),
                        options.getStopSequences(), options.getTemperature(), options.getTopK(), options.getTopP(), options.getToolCallbacks(),
                        options.getToolContext(), options.getOutputSchema()));
        assertEquals(options, options.mutate().build());
        assertEquals(0.5, options.mutate().temperature(0.5).build().getTemperature());
        assertEquals("{}", JvllmSpringChatOptions.from(StructuredOutputChatOptions.builder().outputSchema("{}").build()).getOutputSchema());
        assertEquals(List.of(weather), JvllmSpringChatOptions.from(ToolCallingChatOptions.builder().toolCallbacks(weather).build()).getToolCallbacks());
        var combined = JvllmSpringChatOptions.builder().temperature(0.1).outputSchema("{}")
                .combineWith(JvllmSpringChatOptions.builder().topK(3).outputSchema("{\"type\": \"object\"}")).build();
        assertEquals(List.of(0.1, 3, "{\"type\": \"object\"}"), List.of(combined.getTemperature(), combined.getTopK(), combined.getOutputSchema()));
        // As ChatClient merges a request's options: Spring's own structured-output and tool-calling builders keep their schema and tools.
        var merged = JvllmSpringChatOptions.builder().temperature(0.1).combineWith(StructuredOutputChatOptions.builder().outputSchema("{}")).build();
        assertEquals("{}", merged.getOutputSchema());
        var withTools = JvllmSpringChatOptions.builder().combineWith(ToolCallingChatOptions.builder().toolCallbacks(weather)).build();
        assertEquals(List.of(weather), withTools.getToolCallbacks());
    }

    /** A chat template that writes the tools, the assistant's calls and the tools' results out (the demo model's own writes none). */
    private static final String TOOLS_TEMPLATE = "{% if tools %}Tools:{% for t in tools %} {{ t.function.name }}: {{ t.function.description }}"
            + " {{ t.function.parameters | tojson }}{% endfor %}\n{% endif %}{% for m in messages %}{{ m.role }}: {{ m.content }}"
            + "{% if m.tool_calls %}{% for c in m.tool_calls %} call {{ c.id }} {{ c.function.name }}({{ c.function.arguments | tojson }}){% endfor %}"
            + "{% endif %}{% if m.tool_call_id %} for {{ m.tool_call_id }}{% endif %}\n{% endfor %}assistant:";
}
