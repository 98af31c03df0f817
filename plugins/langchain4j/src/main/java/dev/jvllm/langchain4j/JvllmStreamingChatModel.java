package dev.jvllm.langchain4j;

import dev.jvllm.LLM;
import dev.jvllm.Prompt;
import dev.jvllm.RequestOutput;
import dev.jvllm.engine.AsyncLLMEngine;
import dev.langchain4j.model.chat.StreamingChatModel;
import dev.langchain4j.model.chat.request.ChatRequest;
import dev.langchain4j.model.chat.request.ChatRequestParameters;
import dev.langchain4j.model.chat.response.StreamingChatResponseHandler;

import java.util.List;
import java.util.Objects;
import java.util.concurrent.Flow;
import java.util.concurrent.atomic.AtomicLong;

/**
 * A jvllm {@link LLM} as LangChain4j's {@link StreamingChatModel}, in process: each chat is a request
 * of the model's continuous batch (concurrent callers share its steps), its text handed to
 * {@link StreamingChatResponseHandler#onPartialResponse} as it is generated, then the whole response.
 * Requests are read as {@link JvllmChatModel} reads them.
 *
 * <p>This model drives the LLM's engine from its own thread until {@link #close()}: while it is open,
 * the LLM is not to be used directly. Closing it leaves the LLM open, its owner's to close.
 */
public final class JvllmStreamingChatModel implements StreamingChatModel, AutoCloseable {

    private final LLM llm;
    private final AsyncLLMEngine engine;
    private final ChatRequestParameters defaults;
    private final AtomicLong nextId = new AtomicLong();

    /** Over {@code llm}, with the model's own defaults for what a request leaves out. */
    public JvllmStreamingChatModel(LLM llm) {
        this(llm, ChatRequestParameters.builder().build());
    }

    /** Over {@code llm}, with {@code defaults} for what a request leaves out. */
    public JvllmStreamingChatModel(LLM llm, ChatRequestParameters defaults) {
        this.llm = Objects.requireNonNull(llm, "llm");
        this.defaults = Objects.requireNonNull(defaults, "defaults");
        this.engine = new AsyncLLMEngine(llm.engine(), () -> { });
    }

    @Override
    public ChatRequestParameters defaultRequestParameters() {
        return defaults;
    }

    @Override
    public void doChat(ChatRequest request, StreamingChatResponseHandler handler) {
        List<dev.jvllm.ChatMessage> messages = Conversions.messages(request.messages());
        var sampling = Conversions.sampling(request.parameters());
        String rendered = llm.renderChat(messages);
        List<dev.jvllm.ImageInput> images = messages.stream().flatMap(m -> m.images().stream()).toList();
        Prompt prompt = llm.engine().textPrompt(rendered, false, images, "messages");
        String modelName = llm.modelDirectory().getFileName().toString();
        engine.submit("langchain4j-" + nextId.incrementAndGet(), prompt, sampling).subscribe(new Flow.Subscriber<>() {
            private final StringBuilder text = new StringBuilder();
            private int promptTokens, outputTokens;
            private dev.jvllm.FinishReason finishReason;

            @Override
            public void onSubscribe(Flow.Subscription subscription) {
                subscription.request(Long.MAX_VALUE);
            }

            @Override
            public void onNext(RequestOutput delta) {
                var sequence = delta.outputs().getFirst();
                text.append(sequence.text());
                outputTokens += sequence.tokenIds().size();
                promptTokens = Math.max(promptTokens, delta.promptTokenIds().size());
                if (sequence.finishReason() != null) finishReason = sequence.finishReason();
                if (!sequence.text().isEmpty()) handler.onPartialResponse(sequence.text());
            }

            @Override
            public void onError(Throwable error) {
                handler.onError(error);
            }

            @Override
            public void onComplete() {
                handler.onCompleteResponse(Conversions.response(text.toString(), promptTokens, outputTokens, finishReason, modelName));
            }
        });
    }

    /** Stops the engine thread (requests still running end with the engine's closing error); the LLM stays open. */
    @Override
    public void close() {
        engine.close();
    }
}
