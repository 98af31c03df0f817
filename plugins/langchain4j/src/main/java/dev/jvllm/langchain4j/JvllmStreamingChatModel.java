package dev.jvllm.langchain4j;

import dev.jvllm.LLM;
import dev.jvllm.RequestOutput;
import dev.jvllm.ToolCallParser;
import dev.jvllm.engine.AsyncLLMEngine;
import dev.langchain4j.model.chat.StreamingChatModel;
import dev.langchain4j.model.chat.request.ChatRequest;
import dev.langchain4j.model.chat.request.ChatRequestParameters;
import dev.langchain4j.model.chat.response.ChatResponse;
import dev.langchain4j.model.chat.response.PartialResponse;
import dev.langchain4j.model.chat.response.PartialResponseContext;
import dev.langchain4j.model.chat.response.StreamingChatResponseHandler;
import dev.langchain4j.model.chat.response.StreamingHandle;

import java.util.Objects;
import java.util.concurrent.Flow;
import java.util.concurrent.atomic.AtomicLong;

/**
 * A jvllm {@link LLM} as LangChain4j's {@link StreamingChatModel}, in process: each chat is a request
 * of the model's continuous batch (concurrent callers share its steps), its text handed to
 * {@link StreamingChatResponseHandler#onPartialResponse} as it is generated, then the whole response.
 * Requests are read as {@link JvllmChatModel} reads them.
 *
 * <p>This model serves the LLM's engine ({@link LLM#serveAsync()}) until {@link #close()}: while it is
 * open the LLM's own calls, and a {@link JvllmChatModel} over it, are refused with an
 * {@link IllegalStateException}. Closing it leaves the LLM open, its owner's to close. A handler
 * call that throws ends the request and reaches the handler's {@code onError}; a handler that cancels
 * through its partial responses' streaming handle aborts the request and hears nothing more.
 */
public final class JvllmStreamingChatModel implements StreamingChatModel, AutoCloseable {

    private final LLM llm;
    private final AsyncLLMEngine engine;
    private final ChatRequestParameters defaults;
    private final ToolCallParser toolCallParser;
    private final AtomicLong nextId = new AtomicLong();

    /** Over {@code llm}, with the model's own defaults for what a request leaves out. */
    public JvllmStreamingChatModel(LLM llm) {
        this(llm, ChatRequestParameters.builder().build(), null);
    }

    /**
     * Over {@code llm}, with {@code defaults} for what a request leaves out and {@code toolCallParser}
     * (null: none) for tool choice AUTO, as {@link JvllmChatModel} takes them.
     */
    public JvllmStreamingChatModel(LLM llm, ChatRequestParameters defaults, ToolCallParser toolCallParser) {
        this.llm = Objects.requireNonNull(llm, "llm");
        this.defaults = Objects.requireNonNull(defaults, "defaults");
        this.toolCallParser = toolCallParser;
        this.engine = llm.serveAsync();
    }

    @Override
    public ChatRequestParameters defaultRequestParameters() {
        return defaults;
    }

    @Override
    public java.util.Set<dev.langchain4j.model.chat.Capability> supportedCapabilities() {
        return Conversions.CAPABILITIES;
    }

    /**
     * Streams the answer's text; with tools, only the text before where a call may start (AUTO) or
     * none (REQUIRED), the calls coming with the whole response.
     */
    @Override
    public void doChat(ChatRequest request, StreamingChatResponseHandler handler) {
        if (!engine.isRunning()) throw new IllegalStateException("this model is closed (or its LLM is)");
        Conversions.Plan plan = Conversions.plan(llm, request, toolCallParser);
        String modelName = Conversions.modelName(llm);
        engine.submit("langchain4j-" + nextId.incrementAndGet(), plan.prompt(), plan.sampling()).subscribe(new Flow.Subscriber<>() {
            private final StringBuilder text = new StringBuilder();
            /** Where AUTO's answer is held back, kept as it grows (null without such a parser). */
            private final ToolCallParser.Holding holding =
                    plan.calls() instanceof Conversions.Parsed(ToolCallParser parser) ? parser.holding() : null;
            private int promptTokens, outputTokens, sent;
            private dev.jvllm.FinishReason finishReason;
            private volatile Flow.Subscription subscription;
            /** Set once the handler has had its last word (a response or an error), or cancelled the request. */
            private volatile boolean ended;
            /** The handler's way to stop the request (LangChain4j's streaming handle): the request is aborted. */
            private final StreamingHandle handle = new StreamingHandle() {
                @Override
                public void cancel() {
                    ended = true;
                    if (subscription != null) subscription.cancel();
                }

                @Override
                public boolean isCancelled() {
                    return ended;
                }
            };

            @Override
            public void onSubscribe(Flow.Subscription subscription) {
                this.subscription = subscription;
                subscription.request(Long.MAX_VALUE);
            }

            @Override
            public void onNext(RequestOutput delta) {
                if (ended) return;
                var sequence = delta.outputs().getFirst();
                text.append(sequence.text());
                outputTokens += sequence.tokenIds().size();
                promptTokens = Math.max(promptTokens, delta.promptTokenIds().size());
                if (sequence.finishReason() != null) finishReason = sequence.finishReason();
                int shown = switch (plan.calls()) {
                    case null -> text.length();
                    case Conversions.Listed listed -> 0;
                    case Conversions.Parsed parsed -> holding.heldFrom(text);
                };
                if (shown > sent) {
                    String piece = text.substring(sent, shown);
                    sent = shown;
                    deliver(() -> handler.onPartialResponse(new PartialResponse(piece), new PartialResponseContext(handle)));
                }
            }

            @Override
            public void onError(Throwable error) {
                if (ended) return;
                ended = true;
                handler.onError(error);
            }

            @Override
            public void onComplete() {
                if (ended) return;
                deliver(() -> {
                    ChatResponse response = Conversions.response(text.toString(), plan.calls(), promptTokens, outputTokens, finishReason,
                            modelName);
                    // What was held back from the stream and is not a call's (text beside calls, or no call after all).
                    String content = response.aiMessage().text() == null ? "" : response.aiMessage().text();
                    String whole = response.aiMessage().hasToolExecutionRequests() ? content : text.toString();
                    if (whole.length() > sent && whole.startsWith(text.substring(0, sent))) {
                        handler.onPartialResponse(new PartialResponse(whole.substring(sent)), new PartialResponseContext(handle));
                    }
                    if (ended) return; // cancelled in that last piece
                    ended = true;
                    handler.onCompleteResponse(response);
                });
            }

            /** Runs a handler call; one that throws ends the request and reaches the handler's onError, as LangChain4j's own models do. */
            private void deliver(Runnable call) {
                try {
                    call.run();
                } catch (RuntimeException e) {
                    ended = true;
                    subscription.cancel();
                    handler.onError(e);
                }
            }
        });
    }

    /** The engine this model serves the LLM from (tests). */
    AsyncLLMEngine engine() {
        return engine;
    }

    /** Stops the engine thread (requests still running end with the engine's closing error); the LLM stays open. */
    @Override
    public void close() {
        engine.close();
    }
}
