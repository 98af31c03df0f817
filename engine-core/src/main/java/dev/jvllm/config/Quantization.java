package dev.jvllm.config;

import com.fasterxml.jackson.databind.JsonNode;

import java.util.Optional;

/**
 * What config.json's {@code quantization_config} (or compressed-tensors' older
 * {@code compression_config}) says of the weights. Served: float8 weights, {@code quant_method}
 * "fp8" (with {@code weight_block_size} for block-wise scales) or "compressed-tensors" whose weight
 * groups are 8-bit floats; they are decoded at load ({@link dev.jvllm.weights.Fp8Checkpoint}).
 * Anything else (GPTQ, AWQ, bitsandbytes, integer compressed-tensors, ...) is refused by name.
 *
 * @param field     the config field it came from
 * @param method    {@code quant_method} (or {@code format})
 * @param float8    whether the weights are float8 with scales, which jvllm decodes
 * @param blockSize {@code weight_block_size} [rows, columns], or null
 */
public record Quantization(String field, String method, boolean float8, int[] blockSize) {

    /** The checkpoint's quantization, if config.json declares one. */
    public static Optional<Quantization> of(ModelConfig config) {
        for (String field : new String[]{"quantization_config", "compression_config"}) {
            JsonNode node = config.raw().get(field);
            if (node == null || node.isNull()) continue;
            String method = node.path("quant_method").asText(node.path("format").asText("unnamed"));
            int[] block = null;
            JsonNode blockNode = node.get("weight_block_size");
            if (blockNode != null && blockNode.isArray() && blockNode.size() == 2) {
                block = new int[]{blockNode.get(0).asInt(), blockNode.get(1).asInt()};
            }
            boolean float8 = method.equals("fp8") || (method.equals("compressed-tensors") && float8Groups(node));
            return Optional.of(new Quantization(field, method, float8, block));
        }
        return Optional.empty();
    }

    /** Whether every config group of a compressed-tensors config quantizes weights to 8-bit floats. */
    private static boolean float8Groups(JsonNode node) {
        JsonNode groups = node.path("config_groups");
        if (!groups.isObject() || groups.isEmpty()) return false;
        for (JsonNode group : groups) {
            JsonNode weights = group.path("weights");
            if (!"float".equals(weights.path("type").asText()) || weights.path("num_bits").asInt() != 8) return false;
        }
        return true;
    }
}
