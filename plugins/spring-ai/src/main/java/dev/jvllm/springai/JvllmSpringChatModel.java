package dev.jvllm.springai;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.jvllm.CompletionOutput;
import dev.jvllm.LLM;
import dev.jvllm.RequestOutput;
import dev.jvllm.SamplingParams;
import dev.jvllm.StructuredOutputs;
import dev.jvllm.ToolCallParser;
import dev.jvllm.engine.AsyncLLMEngine;
import dev.jvllm.engine.RequestStream;
import dev.jvllm.hub.ModelResolver;
import org.springframework.ai.chat.messages.AssistantMessage;
import org.springframework.ai.chat.messages.Message;
import org.springframework.ai.chat.messages.ToolResponseMessage;
import org.springframework.ai.chat.messages.UserMessage;
import org.springframework.ai.chat.metadata.ChatGenerationMetadata;
import org.springframework.ai.chat.metadata.ChatResponseMetadata;
import org.springframework.ai.chat.metadata.DefaultUsage;
import org.springframework.ai.chat.model.ChatModel;
import org.springframework.ai.chat.model.ChatResponse;
import org.springframework.ai.chat.model.Generation;
import org.springframework.ai.chat.prompt.ChatOptions;
import org.springframework.ai.chat.prompt.Prompt;
import org.springframework.ai.model.tool.StructuredOutputChatOptions;
import org.springframework.ai.model.tool.ToolCallingChatOptions;
import org.springframework.ai.tool.ToolCallback;
import org.springframework.ai.tool.definition.ToolDefinition;
import reactor.adapter.JdkFlowAdapter;
import reactor.core.publisher.Flux;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.UUID;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Function;

/**
 * A jvllm {@link LLM} as Spring AI's {@link ChatModel}, in process: calls and streams are requests of
 * the model's continuous batch (concurrent callers share its steps), the prompt rendered by the
 * model's chat template, with the options' temperature, top-p, top-k, penalties, length and stop
 * sequences, and a {@link StructuredOutputChatOptions#getOutputSchema() JSON schema} followed by
 * constrained decoding.
 *
 * <p>Tools ({@link ToolCallingChatOptions#getToolCallbacks()}) reach the chat template's {@code tools}
 * and the answer's calls are read by the {@link ToolCallParser} this model was made with, as the model
 * family writes them; an answer holding calls is an {@link AssistantMessage} with its tool calls and
 * finish reason {@code TOOL_CALLS}. As every Spring AI 2 chat model, this one does not run the tools:
 * {@code ChatClient}'s tool-calling advisor (or a loop of the caller's, with a {@code ToolCallingManager})
 * runs them and sends their results back as tool response messages, which the template renders.
 * Media are refused ({@link UnsupportedOperationException}).
 *
 * <pre>{@code
 * try (LLM llm = new LLM("Qwen/Qwen2.5-0.5B-Instruct");
 *      var model = new JvllmSpringChatModel(llm, JvllmSpringChatOptions.builder().build(), ToolCallParser.HERMES)) {
 *     String answer = ChatClient.create(model).prompt("What is the weather in Paris?").tools(new WeatherTools()).call().content();
 * }
 * }</pre>
 *
 * <p>This model serves the LLM's engine ({@link LLM#serveAsync()}) until {@link #close()}: while it is
 * open the LLM's own calls are refused with an {@link IllegalStateException}. Closing it leaves the
 * LLM open, its owner's to close. Each subscription to {@link #stream} is its own request, made when
 * it subscribes; cancelling it aborts the request.
 */
public final class JvllmSpringChatModel implements ChatModel, AutoCloseable {

    private static final ObjectMapper JSON = new ObjectMapper();

    private final LLM llm;
    private final AsyncLLMEngine engine;
    private final JvllmSpringChatOptions defaults;
    private final ToolCallParser toolCallParser;
    private final AtomicLong nextId = new AtomicLong();

    /** Over {@code llm}, with the model's own defaults (its generation config) for what a prompt leaves out; tools are refused. */
    public JvllmSpringChatModel(LLM llm) {
        this(llm, JvllmSpringChatOptions.builder().build());
    }

    /** Over {@code llm}, with {@code defaults} for what a prompt's options leave out; tools are refused. */
    public JvllmSpringChatModel(LLM llm, ChatOptions defaults) {
        this(llm, defaults, null);
    }

    /**
     * Over {@code llm}, with {@code defaults} for what a prompt's options leave out, reading tool calls
     * with {@code toolCallParser} (as the model family writes them: {@link ToolCallParser#HERMES} for
     * Qwen 2.5 and 3, {@link ToolCallParser#LLAMA3_JSON} for Llama 3.1 and 3.2; null: tools are refused).
     * The defaults are kept as {@link JvllmSpringChatOptions} ({@link #getOptions()}), which
     * {@code ChatClient} adds a request's tools to.
     */
    public JvllmSpringChatModel(LLM llm, ChatOptions defaults, ToolCallParser toolCallParser) {
        this.llm = Objects.requireNonNull(llm, "llm");
        this.defaults = JvllmSpringChatOptions.from(Objects.requireNonNull(defaults, "defaults"));
        this.toolCallParser = toolCallParser;
        this.engine = llm.serveAsync();
    }

    @Override
    public JvllmSpringChatOptions getOptions() {
        return defaults;
    }

    @Override
    public JvllmSpringChatOptions getDefaultOptions() {
        return defaults;
    }

    @Override
    public ChatResponse call(Prompt prompt) {
        Request request = submit(prompt);
        try {
            RequestOutput output = request.stream().result().get();
            CompletionOutput sequence = output.outputs().getFirst();
            return response(request.answer(sequence.text()), sequence.finishReason(), output.promptTokenIds().size(),
                    sequence.tokenIds().size());
        } catch (InterruptedException e) {
            request.stream().abort();
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while the model answered", e);
        } catch (ExecutionException e) {
            if (e.getCause() instanceof RuntimeException cause) throw cause;
            throw new IllegalStateException(e.getCause());
        }
    }

    /**
     * The answer as it is generated: a response per new piece of text, the last with the finish
     * reason and the usage. With tools, the text is held back from where a call may start; at the end
     * the text held back that was not a call comes in a response of its own, then a last one holds
     * the calls (tool-calling advisors keep responses with calls from the caller's stream). Cancelling
     * the subscription aborts the request.
     */
    @Override
    public Flux<ChatResponse> stream(Prompt prompt) {
        // Each subscription is its own request, made when it subscribes (a Flux not subscribed to generates nothing).
        return Flux.defer(() -> {
            Request request = submit(prompt);
            StringBuilder text = new StringBuilder();
            ToolCallParser.Holding holding = request.calls() ? toolCallParser.holding() : null;
            int[] tokens = {0};
            int[] sent = {0};
            return JdkFlowAdapter.flowPublisherToFlux(request.stream()).concatMapIterable(delta -> {
                CompletionOutput sequence = delta.outputs().getFirst();
                tokens[0] += sequence.tokenIds().size();
                text.append(sequence.text());
                if (sequence.finishReason() == null) {
                    int shown = holding == null ? text.length() : holding.heldFrom(text);
                    if (shown <= sent[0]) return List.of();  // nothing new to show (held back, or an empty piece)
                    String piece = text.substring(sent[0], shown);
                    sent[0] = shown;
                    return List.of(response(new Answer(piece, List.of()), null, null, null));
                }
                Answer whole = request.answer(text.toString());
                String rest = whole.content().length() > sent[0] ? whole.content().substring(sent[0]) : "";
                ChatResponse last = response(new Answer(whole.calls().isEmpty() ? rest : "", whole.calls()), sequence.finishReason(),
                        delta.promptTokenIds().size(), tokens[0]);
                if (whole.calls().isEmpty() || rest.isEmpty()) return List.of(last);
                return List.of(response(new Answer(rest, List.of()), null, null, null), last);
            });
        });
    }

    /** A submitted request, and whether its answer is read for tool calls. */
    private record Request(RequestStream stream, boolean calls, ToolCallParser parser) {
        /** The answer's content and the calls it holds (none without tools, or where it holds none). */
        Answer answer(String text) {
            if (!calls) return new Answer(text, List.of());
            ToolCallParser.Parsed parsed = parser.parse(text);
            if (parsed.calls().isEmpty()) return new Answer(text, List.of());
            List<AssistantMessage.ToolCall> toolCalls = parsed.calls().stream().map(call -> new AssistantMessage.ToolCall(
                    "call_" + UUID.randomUUID().toString().replace("-", ""), "function", call.name(), call.arguments())).toList();
            return new Answer(parsed.content(), toolCalls);
        }
    }

    /** An answer's text and the tool calls it holds. */
    private record Answer(String content, List<AssistantMessage.ToolCall> calls) {
    }

    private Request submit(Prompt prompt) {
        if (!engine.isRunning()) throw new IllegalStateException("this model is closed (or its LLM is)");
        ChatOptions options = prompt.getOptions();
        // The prompt's tools, or where it has none this model's (Spring AI's merge; null where neither has any).
        List<ToolCallback> tools = Objects.requireNonNullElse(ToolCallingChatOptions.mergeToolCallbacks(
                options instanceof ToolCallingChatOptions asked ? asked.getToolCallbacks() : null,
                defaults instanceof ToolCallingChatOptions given ? given.getToolCallbacks() : null), List.of());
        dev.jvllm.ChatOptions.Builder rendering = dev.jvllm.ChatOptions.builder();
        if (!tools.isEmpty()) {
            if (toolCallParser == null) {
                throw new UnsupportedOperationException("tools need a tool-call parser, as the model family writes calls "
                        + "(new JvllmSpringChatModel(llm, defaults, ToolCallParser.HERMES))");
            }
            rendering.templateVariable("tools", templateTools(tools));
        }
        String rendered = llm.renderChat(messages(prompt.getInstructions()), rendering.build());
        RequestStream stream = engine.submit("spring-ai-" + nextId.incrementAndGet(),
                llm.engine().textPrompt(rendered, false, List.of(), "messages"), sampling(options));
        return new Request(stream, !tools.isEmpty(), toolCallParser);
    }

    /** The tools as the chat template's {@code tools}: OpenAI's function entries, each with its input schema as its parameters. */
    private static List<Map<String, Object>> templateTools(List<ToolCallback> tools) {
        List<Map<String, Object>> entries = new ArrayList<>(tools.size());
        for (ToolCallback tool : tools) {
            ToolDefinition definition = tool.getToolDefinition();
            Map<String, Object> function = new LinkedHashMap<>();
            function.put("name", definition.name());
            if (definition.description() != null) function.put("description", definition.description());
            function.put("parameters", schema(definition.inputSchema(), "tool " + definition.name() + "'s input schema"));
            entries.add(Map.of("type", "function", "function", function));
        }
        return entries;
    }

    private static Map<String, Object> schema(String json, String what) {
        try {
            Map<String, Object> schema = JSON.readValue(json, JSON.getTypeFactory().constructMapType(Map.class, String.class, Object.class));
            if (schema == null) throw new IllegalArgumentException(what + " is empty");
            return schema;
        } catch (JsonProcessingException e) {
            throw new IllegalArgumentException(what + " is not a JSON object: " + e.getOriginalMessage(), e);
        }
    }

    /** The conversation as the chat template's messages: system, user (text), assistant (text and calls) and tool results. */
    private static List<Map<String, Object>> messages(List<Message> messages) {
        List<Map<String, Object>> converted = new ArrayList<>(messages.size());
        for (Message message : messages) {
            switch (message.getMessageType()) {
                case SYSTEM -> converted.add(Map.of("role", "system", "content", text(message)));
                case USER -> {
                    if (message instanceof UserMessage user && !user.getMedia().isEmpty()) {
                        throw new UnsupportedOperationException("jvllm's Spring AI model takes text user messages only");
                    }
                    converted.add(Map.of("role", "user", "content", text(message)));
                }
                case ASSISTANT -> {
                    Map<String, Object> entry = new LinkedHashMap<>();
                    entry.put("role", "assistant");
                    entry.put("content", text(message));
                    if (message instanceof AssistantMessage assistant && assistant.hasToolCalls()) {
                        List<Map<String, Object>> calls = new ArrayList<>();
                        for (AssistantMessage.ToolCall call : assistant.getToolCalls()) {
                            Map<String, Object> function = new LinkedHashMap<>();
                            function.put("name", call.name());
                            function.put("arguments", call.arguments() == null || call.arguments().isBlank() ? "{}" : call.arguments());
                            calls.add(Map.of("id", call.id() == null ? "" : call.id(), "type", "function", "function", function));
                        }
                        entry.put("tool_calls", calls);
                    }
                    converted.add(entry);
                }
                case TOOL -> {
                    if (!(message instanceof ToolResponseMessage results)) {
                        throw new UnsupportedOperationException("a tool message that is not a ToolResponseMessage: " + message.getClass().getName());
                    }
                    for (ToolResponseMessage.ToolResponse result : results.getResponses()) {
                        Map<String, Object> entry = new LinkedHashMap<>();
                        entry.put("role", "tool");
                        entry.put("content", result.responseData() == null ? "" : result.responseData());
                        if (result.id() != null) entry.put("tool_call_id", result.id());
                        if (result.name() != null) entry.put("name", result.name());
                        converted.add(entry);
                    }
                }
            }
        }
        return converted;
    }

    private static String text(Message message) {
        return message.getText() == null ? "" : message.getText();
    }

    /** The prompt's options, each left out taken from this model's defaults, as jvllm's sampling. */
    private SamplingParams sampling(ChatOptions options) {
        SamplingParams.Builder sampling = SamplingParams.builder();
        Double temperature = pick(options, defaults, ChatOptions::getTemperature);
        if (temperature != null) sampling.temperature(temperature);
        Double topP = pick(options, defaults, ChatOptions::getTopP);
        if (topP != null) sampling.topP(topP);
        Integer topK = pick(options, defaults, ChatOptions::getTopK);
        if (topK != null) sampling.topK(topK);
        Double frequency = pick(options, defaults, ChatOptions::getFrequencyPenalty);
        if (frequency != null) sampling.frequencyPenalty(frequency);
        Double presence = pick(options, defaults, ChatOptions::getPresencePenalty);
        if (presence != null) sampling.presencePenalty(presence);
        Integer maxTokens = pick(options, defaults, ChatOptions::getMaxTokens);
        if (maxTokens != null) sampling.maxTokens(maxTokens);
        List<String> stop = pick(options, defaults, ChatOptions::getStopSequences);
        if (stop != null && !stop.isEmpty()) sampling.stop(stop);
        String schema = pick(options, defaults, o -> o instanceof StructuredOutputChatOptions structured ? structured.getOutputSchema() : null);
        if (schema != null && !schema.isBlank()) {
            try {
                sampling.structuredOutputs(StructuredOutputs.json(JSON.<JsonNode>readTree(schema)));
            } catch (JsonProcessingException e) {
                throw new IllegalArgumentException("the output schema is not JSON: " + e.getOriginalMessage(), e);
            }
        }
        return sampling.build();
    }

    private static <T> T pick(ChatOptions options, ChatOptions defaults, Function<ChatOptions, T> get) {
        T value = options == null ? null : get.apply(options);
        return value != null ? value : get.apply(defaults);
    }

    private ChatResponse response(Answer answer, dev.jvllm.FinishReason reason, Integer promptTokens, Integer outputTokens) {
        String finish = !answer.calls().isEmpty() ? "TOOL_CALLS" : reason == null ? null : reason.toString().toUpperCase(Locale.ROOT);
        ChatGenerationMetadata generation = finish == null ? ChatGenerationMetadata.NULL : ChatGenerationMetadata.builder().finishReason(finish).build();
        ChatResponseMetadata.Builder metadata = ChatResponseMetadata.builder().model(ModelResolver.modelName(llm.modelDirectory()));
        if (promptTokens != null) metadata.usage(new DefaultUsage(promptTokens, outputTokens));
        AssistantMessage message = AssistantMessage.builder().content(answer.content()).toolCalls(answer.calls()).build();
        return new ChatResponse(List.of(new Generation(message, generation)), metadata.build());
    }

    /** Stops the engine thread (requests still running end with the engine's closing error); the LLM stays open. */
    @Override
    public void close() {
        engine.close();
    }
}
