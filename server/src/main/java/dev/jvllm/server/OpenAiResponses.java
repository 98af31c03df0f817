package dev.jvllm.server;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.jvllm.CompletionOutput;
import dev.jvllm.Logprob;
import dev.jvllm.RequestOutput;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Collections;
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
    static ObjectNode completionLogprobs(CompletionOutput output, IntFunction<String> decodeOne, int textOffset) {
        return completionLogprobs(output.tokenIds(), output.logprobs(), decodeOne, textOffset);
    }

    /**
     * An echoed completion's logprobs: the prompt's tokens (the first without a log probability, as
     * nothing comes before it) followed by the generated ones, when {@code generated} is not null.
     */
    /**
     * vLLM's {@code prompt_logprobs}: for each prompt token, null for the first (nothing precedes it),
     * else its own and the top candidates' {@code logprob}, {@code rank} and {@code decoded_token} by token id.
     */
    static ArrayNode promptLogprobs(RequestOutput request, IntFunction<String> decodeOne) {
        ArrayNode list = JSON.createArrayNode();
        for (Map<Integer, Logprob> candidates : request.promptLogprobs()) {
            if (candidates == null) {
                list.addNull();
                continue;
            }
            ObjectNode entry = list.addObject();
            candidates.forEach((id, candidate) -> entry.putObject(Integer.toString(id)).put("logprob", candidate.logprob())
                    .put("rank", candidate.rank())
                    .put("decoded_token", candidate.decodedToken() != null ? candidate.decodedToken() : decodeOne.apply(id)));
        }
        return list;
    }

    static ObjectNode echoedLogprobs(RequestOutput request, CompletionOutput generated, IntFunction<String> decodeOne) {
        List<Integer> ids = new ArrayList<>(request.promptTokenIds());
        List<Map<Integer, Logprob>> candidates = new ArrayList<>(request.promptLogprobs() != null ? request.promptLogprobs()
                : Collections.nCopies(ids.size(), null));
        if (generated != null && generated.logprobs() != null) {
            ids.addAll(generated.tokenIds());
            candidates.addAll(generated.logprobs());
        }
        return completionLogprobs(ids, candidates, decodeOne, 0);
    }

    /**
     * Completions' logprobs shape over tokens {@code ids} and each one's candidates (null for a token
     * with none, as a prompt's first): {@code tokens} each decoded alone (" the", not its vocabulary
     * entry "Ġthe", as OpenAI's clients show it), {@code token_logprobs}, {@code top_logprobs} and
     * {@code text_offset} from {@code textOffset}.
     */
    private static ObjectNode completionLogprobs(List<Integer> ids, List<Map<Integer, Logprob>> candidates,
                                                 IntFunction<String> decodeOne, int textOffset) {
        ObjectNode logprobs = JSON.createObjectNode();
        ArrayNode tokens = logprobs.putArray("tokens");
        ArrayNode tokenLogprobs = logprobs.putArray("token_logprobs");
        ArrayNode top = logprobs.putArray("top_logprobs");
        ArrayNode offsets = logprobs.putArray("text_offset");
        int offset = textOffset;
        for (int i = 0; i < ids.size(); i++) {
            int id = ids.get(i);
            String text = decodeOne.apply(id);
            tokens.add(text);
            Map<Integer, Logprob> alternatives = candidates.get(i);
            Logprob sampled = alternatives == null ? null : alternatives.get(id);
            if (sampled == null) tokenLogprobs.addNull();
            else tokenLogprobs.add(sampled.logprob());
            if (alternatives == null) {
                top.addNull();
            } else {
                ObjectNode topOfToken = top.addObject();
                for (var entry : byRank(alternatives)) topOfToken.put(decodeOne.apply(entry.getKey()), entry.getValue().logprob());
            }
            offsets.add(offset);
            offset += text.length();
        }
        return logprobs;
    }

    /** A chat choice's logprobs: {@code content}, a list of tokens each with its log probability, bytes and top alternatives. */
    static ObjectNode chatLogprobs(CompletionOutput output, IntFunction<String> decodeOne, int topCount) {
        ObjectNode logprobs = JSON.createObjectNode();
        ArrayNode content = logprobs.putArray("content");
        for (int i = 0; i < output.logprobs().size(); i++) {
            int id = output.tokenIds().get(i);
            Map<Integer, Logprob> candidates = output.logprobs().get(i);
            ObjectNode token = content.addObject();
            putToken(token, decodeOne.apply(id), candidates.get(id));
            ArrayNode top = token.putArray("top_logprobs");
            byRank(candidates).stream().limit(topCount)
                    .forEach(entry -> putToken(top.addObject(), decodeOne.apply(entry.getKey()), entry.getValue()));
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
}
