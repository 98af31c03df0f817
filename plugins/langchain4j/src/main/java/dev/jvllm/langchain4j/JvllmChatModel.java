package dev.jvllm.langchain4j;

import dev.jvllm.LLM;
import dev.jvllm.RequestOutput;
import dev.jvllm.ToolCallParser;
import dev.langchain4j.model.chat.ChatModel;
import dev.langchain4j.model.chat.request.ChatRequest;
import dev.langchain4j.model.chat.request.ChatRequestParameters;
import dev.langchain4j.model.chat.response.ChatResponse;

import java.util.List;
import java.util.Objects;

/**
 * A jvllm {@link LLM} as LangChain4j's {@link ChatModel}, in process: each chat renders the model's
 * chat template and generates as {@link LLM#chat} does, with the request's temperature, top-p, top-k,
 * penalties, length, stop sequences and JSON response format. Tools go to the template's
 * {@code tools}; calls come back as the AI message's tool execution requests (REQUIRED: the answer
 * held to vLLM's list of calls; AUTO: read by the {@link ToolCallParser} given). Non-text contents
 * are refused ({@link dev.langchain4j.exception.UnsupportedFeatureException}).
 *
 * <pre>{@code
 * try (LLM llm = new LLM("Qwen/Qwen2.5-0.5B-Instruct")) {
 *     ChatModel model = new JvllmChatModel(llm);
 *     String answer = model.chat("What is the capital of France?");
 * }
 * }</pre>
 *
 * <p>The LLM stays its owner's to close. Concurrent callers take turns (the model synchronizes on the
 * LLM, one call at a time, as an {@link LLM} runs them); for requests that share the continuous batch,
 * and for streaming, use {@link JvllmStreamingChatModel} instead (not beside this model over the same
 * LLM: while it serves the LLM, this model's calls are refused with an {@link IllegalStateException}).
 */
public final class JvllmChatModel implements ChatModel {

    private final LLM llm;
    private final ChatRequestParameters defaults;
    private final ToolCallParser toolCallParser;

    /** Over {@code llm}, with the model's own defaults (its generation config) for what a request leaves out. */
    public JvllmChatModel(LLM llm) {
        this(llm, ChatRequestParameters.builder().build(), null);
    }

    /** Over {@code llm}, reading the calls of tool choice AUTO as {@code toolCallParser} finds them in the answer. */
    public JvllmChatModel(LLM llm, ToolCallParser toolCallParser) {
        this(llm, ChatRequestParameters.builder().build(), toolCallParser);
    }

    /**
     * Over {@code llm}, with {@code defaults} for what a request leaves out, and {@code toolCallParser}
     * (null: none) reading the calls of tool choice AUTO out of the answer as the model family writes
     * them (REQUIRED needs none: the answer is then held to a list of calls).
     */
    public JvllmChatModel(LLM llm, ChatRequestParameters defaults, ToolCallParser toolCallParser) {
        this.llm = Objects.requireNonNull(llm, "llm");
        this.defaults = Objects.requireNonNull(defaults, "defaults");
        this.toolCallParser = toolCallParser;
    }

    @Override
    public ChatRequestParameters defaultRequestParameters() {
        return defaults;
    }

    @Override
    public java.util.Set<dev.langchain4j.model.chat.Capability> supportedCapabilities() {
        return Conversions.CAPABILITIES;
    }

    @Override
    public ChatResponse doChat(ChatRequest request) {
        Conversions.Plan plan = Conversions.plan(llm, request, toolCallParser);
        RequestOutput output;
        synchronized (llm) { // an LLM runs one call at a time; callers sharing this model take turns
            output = llm.generatePrompts(List.of(plan.prompt()), plan.sampling()).getFirst();
        }
        return Conversions.response(output, plan.calls(), Conversions.modelName(llm));
    }
}
