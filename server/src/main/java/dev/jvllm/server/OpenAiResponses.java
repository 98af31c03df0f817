package dev.jvllm.server;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.jvllm.CompletionOutput;
import dev.jvllm.Logprob;
import dev.jvllm.RequestOutput;

import java.nio.charset.StandardCharsets;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.function.IntFunction;

/** Builds OpenAI's response bodies and stream chunks from jvllm's outputs. */
final class OpenAiResponses {

    static final ObjectMapper JSON = new ObjectMapper();

    private OpenAiResponses() {
    }

    /** One answer's envelope: {@code id}, {@code object}, {@code created}, {@code model}. */
    record Envelope(String id, String object, long created, String model) {
        ObjectNode start() {
            ObjectNode node = JSON.createObjectNode();
            node.put("id", id).put("object", object).put("created", created).put("model", model);
            return node;
        }
    }

    static ObjectNode usage(int promptTokens, int completionTokens) {
        ObjectNode usage = JSON.createObjectNode();
        usage.put("prompt_tokens", promptTokens).put("completion_tokens", completionTokens)
                .put("total_tokens", promptTokens + completionTokens);
        return usage;
    }

    /** A finish reason as OpenAI names it, or null while running ("abort" only reaches a client whose request was cut). */
    static String finishReason(CompletionOutput output) {
        return output.finishReason() == null ? null : output.finishReason().toString();
    }

    /** A completions choice's logprobs: tokens, their log probabilities, the top ones and text offsets. */
    static ObjectNode completionLogprobs(CompletionOutput output, IntFunction<String> tokenText, int textOffset) {
        ObjectNode logprobs = JSON.createObjectNode();
        ArrayNode tokens = logprobs.putArray("tokens");
        ArrayNode tokenLogprobs = logprobs.putArray("token_logprobs");
        ArrayNode top = logprobs.putArray("top_logprobs");
        ArrayNode offsets = logprobs.putArray("text_offset");
        int offset = textOffset;
        for (int i = 0; i < output.logprobs().size(); i++) {
            int id = output.tokenIds().get(i);
            Map<Integer, Logprob> candidates = output.logprobs().get(i);
            String text = textOf(id, tokenText);
            tokens.add(text);
            Logprob sampled = candidates.get(id);
            if (sampled == null) tokenLogprobs.addNull();
            else tokenLogprobs.add(sampled.logprob());
            ObjectNode topOfToken = top.addObject();
            for (var entry : byRank(candidates)) {
                topOfToken.put(textOf(entry.getKey(), tokenText), entry.getValue().logprob());
            }
            offsets.add(offset);
            offset += text.length();
        }
        return logprobs;
    }

    /**
     * An echoed completion's logprobs: the prompt's tokens (the first without a log probability, as
     * nothing comes before it) followed by the generated ones, when {@code generated} is not null.
     */
    static ObjectNode echoedLogprobs(RequestOutput request, CompletionOutput generated, IntFunction<String> decodeOne) {
        ObjectNode logprobs = JSON.createObjectNode();
        ArrayNode tokens = logprobs.putArray("tokens");
        ArrayNode tokenLogprobs = logprobs.putArray("token_logprobs");
        ArrayNode top = logprobs.putArray("top_logprobs");
        ArrayNode offsets = logprobs.putArray("text_offset");
        int offset = 0;
        List<Integer> ids = new java.util.ArrayList<>(request.promptTokenIds());
        List<Map<Integer, Logprob>> all = new java.util.ArrayList<>(request.promptLogprobs() != null ? request.promptLogprobs()
                : java.util.Collections.nCopies(ids.size(), null));
        if (generated != null && generated.logprobs() != null) {
            ids.addAll(generated.tokenIds());
            all.addAll(generated.logprobs());
        }
        for (int i = 0; i < ids.size(); i++) {
            int id = ids.get(i);
            String text = textOf(id, decodeOne);
            tokens.add(text);
            Map<Integer, Logprob> candidates = all.get(i);
            if (candidates == null || candidates.get(id) == null) {
                tokenLogprobs.addNull();
                top.addNull();
            } else {
                tokenLogprobs.add(candidates.get(id).logprob());
                ObjectNode topOfToken = top.addObject();
                for (var entry : byRank(candidates)) topOfToken.put(textOf(entry.getKey(), decodeOne), entry.getValue().logprob());
            }
            offsets.add(offset);
            offset += text.length();
        }
        return logprobs;
    }

    /** A chat choice's logprobs: {@code content}, a list of tokens each with its log probability, bytes and top alternatives. */
    static ObjectNode chatLogprobs(CompletionOutput output, IntFunction<String> tokenText, int topCount) {
        ObjectNode logprobs = JSON.createObjectNode();
        ArrayNode content = logprobs.putArray("content");
        for (int i = 0; i < output.logprobs().size(); i++) {
            int id = output.tokenIds().get(i);
            Map<Integer, Logprob> candidates = output.logprobs().get(i);
            ObjectNode token = content.addObject();
            putToken(token, textOf(id, tokenText), candidates.get(id));
            ArrayNode top = token.putArray("top_logprobs");
            byRank(candidates).stream().limit(topCount)
                    .forEach(entry -> putToken(top.addObject(), textOf(entry.getKey(), tokenText), entry.getValue()));
        }
        return logprobs;
    }

    private static void putToken(ObjectNode node, String text, Logprob logprob) {
        node.put("token", text);
        if (logprob == null) node.putNull("logprob");
        else node.put("logprob", logprob.logprob());
        ArrayNode bytes = node.putArray("bytes");
        for (byte b : text.getBytes(StandardCharsets.UTF_8)) bytes.add(b & 0xff);
    }

    private static List<Map.Entry<Integer, Logprob>> byRank(Map<Integer, Logprob> candidates) {
        return candidates.entrySet().stream().sorted(Comparator.comparingInt(e -> e.getValue().rank())).toList();
    }

    /** A token as text: decoded alone (" the"), not its vocabulary entry ("Ġthe"), as OpenAI's clients show it. */
    private static String textOf(int tokenId, IntFunction<String> decodeOne) {
        return decodeOne.apply(tokenId);
    }

    /** Tokens of a request's outputs, for usage. */
    static int completionTokens(RequestOutput output) {
        return output.outputs().stream().mapToInt(o -> o.tokenIds().size()).sum();
    }
}
