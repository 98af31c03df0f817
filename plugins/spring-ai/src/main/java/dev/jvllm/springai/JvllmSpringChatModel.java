package dev.jvllm.springai;

import dev.jvllm.CompletionOutput;
import dev.jvllm.LLM;
import dev.jvllm.RequestOutput;
import dev.jvllm.SamplingParams;
import dev.jvllm.engine.AsyncLLMEngine;
import dev.jvllm.engine.RequestStream;
import dev.jvllm.hub.ModelResolver;
import org.springframework.ai.chat.messages.AssistantMessage;
import org.springframework.ai.chat.messages.Message;
import org.springframework.ai.chat.messages.UserMessage;
import org.springframework.ai.chat.metadata.ChatGenerationMetadata;
import org.springframework.ai.chat.metadata.ChatResponseMetadata;
import org.springframework.ai.chat.metadata.DefaultUsage;
import org.springframework.ai.chat.model.ChatModel;
import org.springframework.ai.chat.model.ChatResponse;
import org.springframework.ai.chat.model.Generation;
import org.springframework.ai.chat.prompt.ChatOptions;
import org.springframework.ai.chat.prompt.Prompt;
import org.springframework.ai.model.tool.ToolCallingChatOptions;
import reactor.adapter.JdkFlowAdapter;
import reactor.core.publisher.Flux;

import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.atomic.AtomicLong;

/**
 * A jvllm {@link LLM} as Spring AI's {@link ChatModel}, in process: calls and streams are requests of
 * the model's continuous batch (concurrent callers share its steps), the prompt rendered by the
 * model's chat template, with the options' temperature, top-p, top-k, penalties, length and stop
 * sequences. Tool calls, media and tool messages are refused ({@link UnsupportedOperationException}).
 *
 * <pre>{@code
 * try (LLM llm = new LLM("Qwen/Qwen2.5-0.5B-Instruct"); var model = new JvllmSpringChatModel(llm)) {
 *     String answer = ChatClient.create(model).prompt("What is the capital of France?").call().content();
 * }
 * }</pre>
 *
 * <p>This model serves the LLM's engine ({@link LLM#serveAsync()}) until {@link #close()}: while it is
 * open the LLM's own calls are refused with an {@link IllegalStateException}. Closing it leaves the
 * LLM open, its owner's to close. Each subscription to {@link #stream} is its own request, made when
 * it subscribes; cancelling it aborts the request.
 */
public final class JvllmSpringChatModel implements ChatModel, AutoCloseable {

    private final LLM llm;
    private final AsyncLLMEngine engine;
    private final ChatOptions defaults;
    private final AtomicLong nextId = new AtomicLong();

    /** Over {@code llm}, with the model's own defaults (its generation config) for what a prompt leaves out. */
    public JvllmSpringChatModel(LLM llm) {
        this(llm, ChatOptions.builder().build());
    }

    /** Over {@code llm}, with {@code defaults} for what a prompt's options leave out. */
    public JvllmSpringChatModel(LLM llm, ChatOptions defaults) {
        this.llm = Objects.requireNonNull(llm, "llm");
        this.defaults = Objects.requireNonNull(defaults, "defaults");
        this.engine = llm.serveAsync();
    }

    @Override
    public ChatOptions getOptions() {
        return defaults;
    }

    @Override
    public ChatOptions getDefaultOptions() {
        return defaults;
    }

    @Override
    public ChatResponse call(Prompt prompt) {
        RequestStream stream = submit(prompt);
        try {
            RequestOutput output = stream.result().get();
            CompletionOutput sequence = output.outputs().getFirst();
            return response(sequence.text(), sequence.finishReason(), output.promptTokenIds().size(), sequence.tokenIds().size());
        } catch (InterruptedException e) {
            stream.abort();
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while the model answered", e);
        } catch (ExecutionException e) {
            if (e.getCause() instanceof RuntimeException cause) throw cause;
            throw new IllegalStateException(e.getCause());
        }
    }

    /**
     * The answer as it is generated: a response per new piece of text, the last with the finish
     * reason and the usage. Cancelling the subscription aborts the request.
     */
    @Override
    public Flux<ChatResponse> stream(Prompt prompt) {
        // Each subscription is its own request, made when it subscribes (a Flux not subscribed to generates nothing).
        return Flux.defer(() -> {
            RequestStream stream = submit(prompt);
            int[] tokens = {0};
            return JdkFlowAdapter.flowPublisherToFlux(stream).map(delta -> {
                CompletionOutput sequence = delta.outputs().getFirst();
                tokens[0] += sequence.tokenIds().size();
                return sequence.finishReason() == null ? response(sequence.text(), null, null, null)
                        : response(sequence.text(), sequence.finishReason(), delta.promptTokenIds().size(), tokens[0]);
            });
        });
    }

    private RequestStream submit(Prompt prompt) {
        if (!engine.isRunning()) throw new IllegalStateException("this model is closed (or its LLM is)");
        for (ChatOptions options : new ChatOptions[]{prompt.getOptions(), defaults}) {
            if (options instanceof ToolCallingChatOptions tools && tools.getToolCallbacks() != null && !tools.getToolCallbacks().isEmpty()) {
                throw new UnsupportedOperationException("jvllm's Spring AI model does not call tools (serve the model with ./jvllm serve for tool calls)");
            }
        }
        List<dev.jvllm.ChatMessage> messages = new ArrayList<>();
        for (Message message : prompt.getInstructions()) {
            messages.add(switch (message.getMessageType()) {
                case SYSTEM -> dev.jvllm.ChatMessage.system(message.getText());
                case USER -> {
                    if (message instanceof UserMessage user && !user.getMedia().isEmpty()) {
                        throw new UnsupportedOperationException("jvllm's Spring AI model takes text user messages only");
                    }
                    yield dev.jvllm.ChatMessage.user(message.getText());
                }
                case ASSISTANT -> {
                    if (message instanceof AssistantMessage assistant && assistant.hasToolCalls()) {
                        throw new UnsupportedOperationException("jvllm's Spring AI model does not call tools");
                    }
                    yield dev.jvllm.ChatMessage.assistant(message.getText() == null ? "" : message.getText());
                }
                case TOOL -> throw new UnsupportedOperationException("jvllm's Spring AI model does not call tools");
            });
        }
        String rendered = llm.renderChat(messages);
        return engine.submit("spring-ai-" + nextId.incrementAndGet(), llm.engine().textPrompt(rendered, false, List.of(), "messages"),
                sampling(prompt.getOptions()));
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
        return sampling.build();
    }

    private static <T> T pick(ChatOptions options, ChatOptions defaults, java.util.function.Function<ChatOptions, T> get) {
        T value = options == null ? null : get.apply(options);
        return value != null ? value : get.apply(defaults);
    }

    private ChatResponse response(String text, dev.jvllm.FinishReason reason, Integer promptTokens, Integer outputTokens) {
        ChatGenerationMetadata generation = reason == null ? ChatGenerationMetadata.NULL
                : ChatGenerationMetadata.builder().finishReason(reason.toString().toUpperCase(java.util.Locale.ROOT)).build();
        ChatResponseMetadata.Builder metadata = ChatResponseMetadata.builder().model(ModelResolver.modelName(llm.modelDirectory()));
        if (promptTokens != null) metadata.usage(new DefaultUsage(promptTokens, outputTokens));
        return new ChatResponse(List.of(new Generation(new AssistantMessage(text), generation)), metadata.build());
    }

    /** Stops the engine thread (requests still running end with the engine's closing error); the LLM stays open. */
    @Override
    public void close() {
        engine.close();
    }
}
