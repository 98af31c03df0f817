package dev.jvllm.langchain4j;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.jvllm.CompletionOutput;
import dev.jvllm.RequestOutput;
import dev.jvllm.SamplingParams;
import dev.jvllm.StructuredOutputs;
import dev.langchain4j.data.message.AiMessage;
import dev.langchain4j.data.message.ChatMessage;
import dev.langchain4j.data.message.SystemMessage;
import dev.langchain4j.data.message.UserMessage;
import dev.langchain4j.exception.UnsupportedFeatureException;
import dev.langchain4j.internal.JsonSchemaElementJsonUtils;
import dev.langchain4j.model.chat.request.ChatRequestParameters;
import dev.langchain4j.model.chat.request.ResponseFormat;
import dev.langchain4j.model.chat.request.ResponseFormatType;
import dev.langchain4j.model.chat.response.ChatResponse;
import dev.langchain4j.model.output.FinishReason;
import dev.langchain4j.model.output.TokenUsage;

import java.util.ArrayList;
import java.util.List;

/** LangChain4j's chat requests as jvllm's messages and sampling parameters, and jvllm's outputs as its responses. */
final class Conversions {

    private static final ObjectMapper JSON = new ObjectMapper();

    private Conversions() {
    }

    /**
     * The conversation as jvllm's chat messages: system, user (text) and AI (text) messages. Tool
     * requests and results, and non-text contents, are refused with an {@link UnsupportedFeatureException}.
     */
    static List<dev.jvllm.ChatMessage> messages(List<ChatMessage> messages) {
        List<dev.jvllm.ChatMessage> converted = new ArrayList<>(messages.size());
        for (ChatMessage message : messages) {
            converted.add(switch (message) {
                case SystemMessage system -> dev.jvllm.ChatMessage.system(system.text());
                case UserMessage user -> {
                    if (!user.hasSingleText()) throw new UnsupportedFeatureException("jvllm's LangChain4j models take text user messages only");
                    yield dev.jvllm.ChatMessage.user(user.singleText());
                }
                case AiMessage ai -> {
                    if (ai.hasToolExecutionRequests()) throw new UnsupportedFeatureException("jvllm's LangChain4j models do not call tools");
                    yield dev.jvllm.ChatMessage.assistant(ai.text() == null ? "" : ai.text());
                }
                default -> throw new UnsupportedFeatureException("jvllm's LangChain4j models do not take " + message.type() + " messages");
            });
        }
        return converted;
    }

    /**
     * The request's parameters as jvllm's sampling: temperature, top-p, top-k, the penalties, the
     * output's length, stop sequences, and a JSON response format (with its schema where it has one)
     * as a structured output. Tools are refused with an {@link UnsupportedFeatureException}.
     */
    static SamplingParams sampling(ChatRequestParameters parameters) {
        SamplingParams.Builder sampling = SamplingParams.builder();
        if (parameters.toolSpecifications() != null && !parameters.toolSpecifications().isEmpty()) {
            throw new UnsupportedFeatureException("jvllm's LangChain4j models do not call tools (serve the model with ./jvllm serve for tool calls)");
        }
        if (parameters.temperature() != null) sampling.temperature(parameters.temperature());
        if (parameters.topP() != null) sampling.topP(parameters.topP());
        if (parameters.topK() != null) sampling.topK(parameters.topK());
        if (parameters.frequencyPenalty() != null) sampling.frequencyPenalty(parameters.frequencyPenalty());
        if (parameters.presencePenalty() != null) sampling.presencePenalty(parameters.presencePenalty());
        if (parameters.maxOutputTokens() != null) sampling.maxTokens(parameters.maxOutputTokens());
        if (parameters.stopSequences() != null && !parameters.stopSequences().isEmpty()) sampling.stop(parameters.stopSequences());
        ResponseFormat format = parameters.responseFormat();
        if (format != null && format.type() == ResponseFormatType.JSON) {
            if (format.jsonSchema() == null) {
                sampling.structuredOutputs(StructuredOutputs.jsonObject());
            } else {
                try {
                    sampling.structuredOutputs(StructuredOutputs.json(
                            JSON.writeValueAsString(JsonSchemaElementJsonUtils.toMap(format.jsonSchema().rootElement()))));
                } catch (JsonProcessingException e) {
                    throw new IllegalArgumentException("the response format's JSON schema cannot be written as JSON", e);
                }
            }
        }
        return sampling.build();
    }

    /** The output's first sequence as LangChain4j's response: the AI message, its token usage and finish reason. */
    static ChatResponse response(RequestOutput output, String modelName) {
        CompletionOutput sequence = output.outputs().getFirst();
        return response(sequence.text(), output.promptTokenIds().size(), sequence.tokenIds().size(), sequence.finishReason(), modelName);
    }

    /** A response of {@code text}, its token counts and why it ended. */
    static ChatResponse response(String text, int promptTokens, int outputTokens, dev.jvllm.FinishReason reason, String modelName) {
        return ChatResponse.builder()
                .aiMessage(AiMessage.from(text))
                .tokenUsage(new TokenUsage(promptTokens, outputTokens))
                .finishReason(finishReason(reason))
                .modelName(modelName)
                .build();
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
