package dev.jvllm.config;

import com.fasterxml.jackson.databind.JsonNode;
import dev.jvllm.weights.PackedIntCheckpoint;

import java.util.Locale;
import java.util.Optional;

/**
 * What config.json's {@code quantization_config} (or compressed-tensors' older
 * {@code compression_config}) says of the weights. Served, by decoding the weights at load
 * ({@link dev.jvllm.weights.Fp8Checkpoint}, {@link PackedIntCheckpoint}): float8 weights
 * ({@code quant_method} "fp8", with {@code weight_block_size} for block-wise scales, or
 * "compressed-tensors" whose weight groups are 8-bit floats); GPTQ of 2, 4 or 8 bits (AutoGPTQ's
 * "gptq" and GPTQModel's "gptq_v2" checkpoint formats); AWQ of 4 bits in AutoAWQ's GEMM layout.
 * Anything else (bitsandbytes, integer compressed-tensors, Marlin-packed GPTQ, AWQ's GEMV
 * layouts, ...) has a {@link #refusal}.
 *
 * @param field        the config field it came from
 * @param method       {@code quant_method} (or {@code format})
 * @param float8       whether the weights are float8 with scales
 * @param blockSize    {@code weight_block_size} [rows, columns], or null
 * @param packedFormat the GPTQ or AWQ packing, or null
 * @param bits         the packed integers' width (GPTQ, AWQ), else 0
 * @param groupSize    the inputs one scale covers (GPTQ, AWQ; -1: all of them), else 0
 * @param refusal      why jvllm cannot read these weights, or null where it can
 */
public record Quantization(String field, String method, boolean float8, int[] blockSize,
                           PackedIntCheckpoint.Format packedFormat, int bits, int groupSize, String refusal) {

    /** The checkpoint's quantization, if config.json declares one. */
    public static Optional<Quantization> of(ModelConfig config) {
        for (String field : new String[]{"quantization_config", "compression_config"}) {
            JsonNode node = config.raw().get(field);
            if (node == null || node.isNull()) continue;
            String method = node.path("quant_method").asText(node.path("format").asText("unnamed"));
            return Optional.of(switch (method.toLowerCase(Locale.ROOT)) {
                case "gptq" -> gptq(field, method, node);
                case "awq" -> awq(field, method, node);
                default -> {
                    int[] block = null;
                    JsonNode blockNode = node.get("weight_block_size");
                    if (blockNode != null && blockNode.isArray() && blockNode.size() == 2) {
                        block = new int[]{blockNode.get(0).asInt(), blockNode.get(1).asInt()};
                    }
                    boolean float8 = method.equals("fp8") || (method.equals("compressed-tensors") && float8Groups(node));
                    yield new Quantization(field, method, float8, block, null, 0, 0,
                            float8 ? null : "jvllm reads float8, GPTQ and AWQ weights only");
                }
            });
        }
        return Optional.empty();
    }

    /** Whether the weights can be read (decoded at load). */
    public boolean served() {
        return refusal == null;
    }

    private static Quantization gptq(String field, String method, JsonNode node) {
        int bits = node.path("bits").asInt(0);
        int groupSize = node.path("group_size").asInt(128);
        String format = node.path("checkpoint_format").asText("gptq").toLowerCase(Locale.ROOT);
        PackedIntCheckpoint.Format packing = switch (format) {
            case "gptq" -> PackedIntCheckpoint.Format.GPTQ;
            case "gptq_v2" -> PackedIntCheckpoint.Format.GPTQ_V2;
            default -> null;
        };
        String refusal = null;
        if (packing == null || node.path("is_marlin_format").asBoolean(false)) {
            refusal = "GPTQ's '" + (packing == null ? format : "marlin") + "' checkpoint format is not read (only 'gptq' and 'gptq_v2')";
        } else if (bits != 2 && bits != 4 && bits != 8) {
            refusal = "GPTQ of " + (bits == 0 ? "no declared" : bits) + " bits is not read (only 2, 4 and 8)";
        } else if (groupSize == 0 || groupSize < -1) {
            refusal = "GPTQ's group_size " + groupSize + " is neither positive nor -1";
        }
        return new Quantization(field, method, false, null, packing, bits, groupSize, refusal);
    }

    private static Quantization awq(String field, String method, JsonNode node) {
        int bits = node.path("bits").asInt(node.path("w_bit").asInt(4));
        int groupSize = node.path("group_size").asInt(node.path("q_group_size").asInt(128));
        String version = node.path("version").asText("gemm").toLowerCase(Locale.ROOT);
        String refusal = null;
        if (!version.equals("gemm")) {
            refusal = "AWQ's '" + version + "' layout is not read (only 'gemm')";
        } else if (bits != 4) {
            refusal = "AWQ of " + bits + " bits is not read (only 4)";
        } else if (!node.path("zero_point").asBoolean(true)) {
            refusal = "AWQ without zero points is not read";
        } else if (groupSize == 0 || groupSize < -1) {
            refusal = "AWQ's group_size " + groupSize + " is neither positive nor -1";
        }
        return new Quantization(field, method, false, null, PackedIntCheckpoint.Format.AWQ, bits, groupSize, refusal);
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
