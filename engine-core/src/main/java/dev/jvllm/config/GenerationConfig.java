package dev.jvllm.config;

import com.fasterxml.jackson.databind.node.JsonNodeFactory;

import java.nio.file.Files;
import java.nio.file.Path;
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

    /**
     * Reads {@code generation_config.json} of a model directory; the eos and bos ids fall back to
     * config.json's when the file lacks them (or is absent).
     */
    public static GenerationConfig load(Path modelDirectory, ModelConfig modelConfig) {
        Path file = modelDirectory.resolve("generation_config.json");
        ConfigFields gen = Files.exists(file) ? new ConfigFields(ModelConfig.readJson(file), file.toString())
                : new ConfigFields(JsonNodeFactory.instance.objectNode(), file.toString());
        ConfigFields model = modelConfig.fields();
        ConfigFields eosSource = gen.has("eos_token_id") ? gen : model;
        ConfigFields bosSource = gen.has("bos_token_id") ? gen : model;
        return new GenerationConfig(tokenIds(eosSource, "eos_token_id"), tokenId(bosSource, "bos_token_id"),
                gen.number("temperature"), gen.number("top_p"), gen.integer("top_k"),
                gen.number("repetition_penalty"), gen.integer("max_new_tokens"));
    }

    private static List<Integer> tokenIds(ConfigFields fields, String field) {
        List<Integer> ids = fields.integers(field);
        for (int id : ids) {
            if (id < 0) {
                throw fields.invalid(field, "must hold non-negative token ids, got " + id);
            }
        }
        return ids;
    }

    private static OptionalInt tokenId(ConfigFields fields, String field) {
        OptionalInt id = fields.integer(field);
        if (id.isPresent() && id.getAsInt() < 0) {
            throw fields.invalid(field, "must be a non-negative token id, got " + id.getAsInt());
        }
        return id;
    }
}
