package dev.jvllm.langchain4j;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.jvllm.ChatOptions;
import dev.jvllm.LLM;
import dev.jvllm.Prompt;
import dev.jvllm.RequestOutput;
import dev.jvllm.SamplingParams;
import dev.jvllm.StructuredOutputs;
import dev.jvllm.ToolCallParser;
import dev.jvllm.hub.ModelResolver;
import dev.langchain4j.agent.tool.ToolExecutionRequest;
import dev.langchain4j.agent.tool.ToolSpecification;
import dev.langchain4j.data.message.AiMessage;
import dev.langchain4j.data.message.ChatMessage;
import dev.langchain4j.data.message.SystemMessage;
import dev.langchain4j.data.message.ToolExecutionResultMessage;
import dev.langchain4j.data.message.UserMessage;
import dev.langchain4j.exception.UnsupportedFeatureException;
import dev.langchain4j.internal.JsonSchemaElementJsonUtils;
import dev.langchain4j.model.chat.request.ChatRequest;
import dev.langchain4j.model.chat.request.ChatRequestParameters;
import dev.langchain4j.model.chat.request.ResponseFormat;
import dev.langchain4j.model.chat.request.ResponseFormatType;
import dev.langchain4j.model.chat.request.ToolChoice;
import dev.langchain4j.model.chat.response.ChatResponse;
import dev.langchain4j.model.output.FinishReason;
import dev.langchain4j.model.output.TokenUsage;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;

/**
 * A LangChain4j chat request as jvllm runs it: the conversation as the chat template's messages
 * (tool calls and their results included), the parameters as {@link SamplingParams}, and the tools
 * as the template's {@code tools} with, for {@link ToolChoice#REQUIRED}, vLLM's list-of-calls
 * constraint, or for {@link ToolChoice#AUTO} the calls read from the answer by a {@link ToolCallParser}.
 */
final class Conversions {

    private static final ObjectMapper JSON = new ObjectMapper();
    /** JSON schemas are followed by constrained decoding, so LangChain4j's AI services send them. */
    static final java.util.Set<dev.langchain4j.model.chat.Capability> CAPABILITIES =
            java.util.Set.of(dev.langchain4j.model.chat.Capability.RESPONSE_FORMAT_JSON_SCHEMA);

    private Conversions() {
    }

    /** How a request is to be answered: its prompt, its sampling, and how calls are read from the answer (none: text). */
    record Plan(Prompt prompt, SamplingParams sampling, Calls calls) {
    }

    /** How an answer holds calls: as a constrained JSON list (required), or as the parser finds them (auto). */
    sealed interface Calls permits Listed, Parsed {
    }

    record Listed() implements Calls {
    }

    record Parsed(ToolCallParser parser) implements Calls {
    }

    /**
     * The request as jvllm runs it on {@code llm}; {@code parser} reads calls for {@link ToolChoice#AUTO}
     * (null: such requests are refused). Non-text contents are refused with an {@link UnsupportedFeatureException}.
     */
    static Plan plan(LLM llm, ChatRequest request, ToolCallParser parser) {
        ChatRequestParameters parameters = request.parameters();
        SamplingParams.Builder sampling = sampling(parameters);
        ChatOptions.Builder options = ChatOptions.builder();
        Calls calls = null;
        List<ToolSpecification> tools = parameters.toolSpecifications() == null ? List.of() : parameters.toolSpecifications();
        if (!tools.isEmpty() && parameters.toolChoice() != ToolChoice.NONE) {
            if (parameters.responseFormat() != null && parameters.responseFormat().type() == ResponseFormatType.JSON) {
                throw new UnsupportedFeatureException("tools and a JSON response format cannot be asked for together");
            }
            List<Map<String, Object>> templateTools = new ArrayList<>();
            Map<String, JsonNode> parametersByName = new LinkedHashMap<>();
            for (ToolSpecification tool : tools) {
                Map<String, Object> schema = tool.parameters() == null ? Map.of("type", "object", "properties", Map.of())
                        : JsonSchemaElementJsonUtils.toMap(tool.parameters());
                Map<String, Object> function = new LinkedHashMap<>();
                function.put("name", tool.name());
                if (tool.description() != null) function.put("description", tool.description());
                function.put("parameters", schema);
                templateTools.add(Map.of("type", "function", "function", function));
                parametersByName.put(tool.name(), JSON.valueToTree(schema));
            }
            options.templateVariable("tools", templateTools);
            if (parameters.toolChoice() == ToolChoice.REQUIRED) {
                sampling.structuredOutputs(StructuredOutputs.toolCalls(parametersByName));
                calls = new Listed();
            } else if (parser != null) {
                calls = new Parsed(parser);
            } else {
                throw new UnsupportedFeatureException("tool choice AUTO needs a tool-call parser, as the model family writes calls "
                        + "(e.g. new JvllmChatModel(llm, ToolCallParser.HERMES)); REQUIRED needs none");
            }
        }
        String rendered = llm.renderChat(messages(request.messages()), options.build());
        return new Plan(Prompt.tokens(llm.tokenizer().encode(rendered, false)), sampling.build(), calls);
    }

    /** The conversation as the chat template's messages: system, user (text), assistant (text and calls) and tool results. */
    private static List<Map<String, Object>> messages(List<ChatMessage> messages) {
        List<Map<String, Object>> converted = new ArrayList<>(messages.size());
        for (ChatMessage message : messages) {
            Map<String, Object> entry = new LinkedHashMap<>();
            switch (message) {
                case SystemMessage system -> entry.putAll(Map.of("role", "system", "content", system.text()));
                case UserMessage user -> {
                    if (!user.hasSingleText()) throw new UnsupportedFeatureException("jvllm's LangChain4j models take text user messages only");
                    entry.putAll(Map.of("role", "user", "content", user.singleText()));
                }
                case AiMessage ai -> {
                    entry.put("role", "assistant");
                    entry.put("content", ai.text() == null ? "" : ai.text());
                    if (ai.hasToolExecutionRequests()) {
                        List<Map<String, Object>> toolCalls = new ArrayList<>();
                        for (ToolExecutionRequest call : ai.toolExecutionRequests()) {
                            Map<String, Object> function = new LinkedHashMap<>();
                            function.put("name", call.name());
                            function.put("arguments", call.arguments() == null ? "{}" : call.arguments());
                            toolCalls.add(Map.of("id", call.id() == null ? "" : call.id(), "type", "function", "function", function));
                        }
                        entry.put("tool_calls", toolCalls);
                    }
                }
                case ToolExecutionResultMessage result -> {
                    entry.put("role", "tool");
                    entry.put("content", result.text());
                    if (result.id() != null) entry.put("tool_call_id", result.id());
                    if (result.toolName() != null) entry.put("name", result.toolName());
                }
                default -> throw new UnsupportedFeatureException("jvllm's LangChain4j models do not take " + message.type() + " messages");
            }
            converted.add(entry);
        }
        return converted;
    }

    /**
     * The request's parameters as jvllm's sampling: temperature, top-p, top-k, the penalties, the
     * output's length, stop sequences, and a JSON response format (with its schema where it has one)
     * as a structured output.
     */
    private static SamplingParams.Builder sampling(ChatRequestParameters parameters) {
        SamplingParams.Builder sampling = SamplingParams.builder();
        if (parameters.temperature() != null) sampling.temperature(parameters.temperature());
        if (parameters.topP() != null) sampling.topP(parameters.topP());
        if (parameters.topK() != null) sampling.topK(parameters.topK());
        if (parameters.frequencyPenalty() != null) sampling.frequencyPenalty(parameters.frequencyPenalty());
        if (parameters.presencePenalty() != null) sampling.presencePenalty(parameters.presencePenalty());
        if (parameters.maxOutputTokens() != null) sampling.maxTokens(parameters.maxOutputTokens());
        if (parameters.stopSequences() != null && !parameters.stopSequences().isEmpty()) sampling.stop(parameters.stopSequences());
        ResponseFormat format = parameters.responseFormat();
        if (format != null && format.type() == ResponseFormatType.JSON) {
            sampling.structuredOutputs(format.jsonSchema() == null ? StructuredOutputs.jsonObject()
                    : StructuredOutputs.json(JSON.<JsonNode>valueToTree(JsonSchemaElementJsonUtils.toMap(format.jsonSchema().rootElement()))));
        }
        return sampling;
    }

    /**
     * The answer as LangChain4j's response: its text, or the calls it holds (finish reason
     * TOOL_EXECUTION) beside any text before them; its token counts and why it ended.
     */
    static ChatResponse response(String text, Calls calls, int promptTokens, int outputTokens, dev.jvllm.FinishReason reason,
                                 String modelName) {
        AiMessage message = AiMessage.from(text);
        FinishReason finish = finishReason(reason);
        List<ToolExecutionRequest> requests = calls == null ? List.of() : toolRequests(text, calls);
        if (!requests.isEmpty()) {
            String content = calls instanceof Parsed(ToolCallParser parser) ? parser.parse(text).content() : "";
            message = content.isEmpty() ? AiMessage.from(requests) : AiMessage.from(content, requests);
            finish = FinishReason.TOOL_EXECUTION;
        }
        return ChatResponse.builder().aiMessage(message).tokenUsage(new TokenUsage(promptTokens, outputTokens))
                .finishReason(finish).modelName(modelName).build();
    }

    /** The name responses give the model: its Hub id, or its directory's name. */
    static String modelName(LLM llm) {
        return ModelResolver.modelName(llm.modelDirectory());
    }

    static ChatResponse response(RequestOutput output, Calls calls, String modelName) {
        var sequence = output.outputs().getFirst();
        return response(sequence.text(), calls, output.promptTokenIds().size(), sequence.tokenIds().size(), sequence.finishReason(),
                modelName);
    }

    /** The calls an answer holds (none where it holds none, or its list did not close before the answer ran out). */
    private static List<ToolExecutionRequest> toolRequests(String text, Calls calls) {
        List<ToolExecutionRequest> requests = new ArrayList<>();
        switch (calls) {
            case Parsed(ToolCallParser parser) -> {
                for (ToolCallParser.Call call : parser.parse(text).calls()) requests.add(request(call.name(), call.arguments()));
            }
            case Listed listed -> {
                List<ToolCallParser.Call> closed = ToolCallParser.listed(text);
                if (closed == null) return List.of();
                for (ToolCallParser.Call call : closed) requests.add(request(call.name(), call.arguments()));
            }
        }
        return requests;
    }

    private static ToolExecutionRequest request(String name, String arguments) {
        return ToolExecutionRequest.builder().id("call_" + UUID.randomUUID().toString().replace("-", "")).name(name).arguments(arguments).build();
    }

    private static FinishReason finishReason(dev.jvllm.FinishReason reason) {
        if (reason == null) return FinishReason.OTHER;
        return switch (reason) {
            case STOP -> FinishReason.STOP;
            case LENGTH -> FinishReason.LENGTH;
            case ABORT -> FinishReason.OTHER;
        };
    }
}
