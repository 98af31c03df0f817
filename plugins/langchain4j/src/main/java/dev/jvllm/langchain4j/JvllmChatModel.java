package dev.jvllm.langchain4j;

import dev.jvllm.LLM;
import dev.langchain4j.model.chat.ChatModel;
import dev.langchain4j.model.chat.request.ChatRequest;
import dev.langchain4j.model.chat.request.ChatRequestParameters;
import dev.langchain4j.model.chat.response.ChatResponse;

import java.util.Objects;

/**
 * A jvllm {@link LLM} as LangChain4j's {@link ChatModel}, in process: each chat renders the model's
 * chat template and generates as {@link LLM#chat} does, with the request's temperature, top-p, top-k,
 * penalties, length, stop sequences and JSON response format. Tools and non-text contents are
 * refused ({@link dev.langchain4j.exception.UnsupportedFeatureException}).
 *
 * <pre>{@code
 * try (LLM llm = new LLM("Qwen/Qwen2.5-0.5B-Instruct")) {
 *     ChatModel model = new JvllmChatModel(llm);
 *     String answer = model.chat("What is the capital of France?");
 * }
 * }</pre>
 *
 * <p>The LLM stays its owner's to close. Calls are served one at a time, as {@link LLM}'s are; for
 * concurrent callers and streaming use {@link JvllmStreamingChatModel}.
 */
public final class JvllmChatModel implements ChatModel {

    private final LLM llm;
    private final ChatRequestParameters defaults;

    /** Over {@code llm}, with the model's own defaults (its generation config) for what a request leaves out. */
    public JvllmChatModel(LLM llm) {
        this(llm, ChatRequestParameters.builder().build());
    }

    /** Over {@code llm}, with {@code defaults} for what a request leaves out. */
    public JvllmChatModel(LLM llm, ChatRequestParameters defaults) {
        this.llm = Objects.requireNonNull(llm, "llm");
        this.defaults = Objects.requireNonNull(defaults, "defaults");
    }

    @Override
    public ChatRequestParameters defaultRequestParameters() {
        return defaults;
    }

    @Override
    public ChatResponse doChat(ChatRequest request) {
        var output = llm.chat(Conversions.messages(request.messages()), Conversions.sampling(request.parameters()));
        return Conversions.response(output, llm.modelDirectory().getFileName().toString());
    }
}
