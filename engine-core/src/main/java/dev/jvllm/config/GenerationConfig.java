package dev.jvllm.config;

import com.fasterxml.jackson.databind.JsonNode;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.OptionalDouble;
import java.util.OptionalInt;

/**
 * Defaults from {@code generation_config.json}: end-of-sequence ids (one or a list) and sampling
 * defaults the model's authors chose. Absent file: all empty.
 */
public record GenerationConfig(List<Integer> eosTokenIds, OptionalInt bosTokenId, OptionalDouble temperature,
                               OptionalDouble topP, OptionalInt topK, OptionalDouble repetitionPenalty,
                               OptionalInt maxNewTokens) {

    public static GenerationConfig empty() {
        return new GenerationConfig(List.of(), OptionalInt.empty(), OptionalDouble.empty(), OptionalDouble.empty(),
                OptionalInt.empty(), OptionalDouble.empty(), OptionalInt.empty());
    }

    /** Reads {@code generation_config.json} of a model directory, falling back to config.json's eos/bos ids. */
    public static GenerationConfig load(Path modelDirectory, ModelConfig modelConfig) {
        Path file = modelDirectory.resolve("generation_config.json");
        JsonNode gen = Files.isRegularFile(file) ? ModelConfig.readJson(file) : null;
        JsonNode cfg = modelConfig.raw();
        JsonNode eos = gen != null && gen.has("eos_token_id") ? gen.get("eos_token_id") : cfg.get("eos_token_id");
        JsonNode bos = gen != null && gen.has("bos_token_id") ? gen.get("bos_token_id") : cfg.get("bos_token_id");
        return new GenerationConfig(ids(eos, file), optInt(bos), optDouble(gen, "temperature"), optDouble(gen, "top_p"),
                optInt(gen == null ? null : gen.get("top_k")), optDouble(gen, "repetition_penalty"),
                optInt(gen == null ? null : gen.get("max_new_tokens")));
    }

    private static List<Integer> ids(JsonNode node, Path file) {
        List<Integer> ids = new ArrayList<>();
        if (node == null || node.isNull()) return ids;
        if (node.isArray()) {
            node.forEach(n -> ids.add(checkedId(n, file)));
        } else {
            ids.add(checkedId(node, file));
        }
        return List.copyOf(ids);
    }

    private static int checkedId(JsonNode n, Path file) {
        if (!n.canConvertToInt() || n.asInt() < 0) {
            throw new ConfigException(file + ": 'eos_token_id' must hold non-negative integers, got " + n);
        }
        return n.asInt();
    }

    private static OptionalInt optInt(JsonNode n) {
        return n == null || n.isNull() || !n.canConvertToInt() ? OptionalInt.empty() : OptionalInt.of(n.asInt());
    }

    private static OptionalDouble optDouble(JsonNode gen, String field) {
        JsonNode n = gen == null ? null : gen.get(field);
        return n == null || !n.isNumber() ? OptionalDouble.empty() : OptionalDouble.of(n.asDouble());
    }
}
