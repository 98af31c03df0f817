package dev.jvllm.config;

import com.fasterxml.jackson.databind.JsonNode;

import java.util.Locale;
import java.util.Optional;

/**
 * What config.json's {@code quantization_config} (or compressed-tensors' older
 * {@code compression_config}) says of the weights. Served, by decoding the weights at load
 * ({@link dev.jvllm.weights.Fp8Checkpoint}, {@link dev.jvllm.weights.PackedIntCheckpoint},
 * {@link dev.jvllm.weights.BitsAndBytesCheckpoint}): float8 weights ({@code quant_method} "fp8",
 * with {@code weight_block_size} for block-wise scales, or "compressed-tensors" whose weight groups
 * are 8-bit floats); GPTQ of 2, 4 or 8 bits (AutoGPTQ's "gptq" and GPTQModel's "gptq_v2" checkpoint
 * formats); AWQ of 4 bits in AutoAWQ's GEMM layout; bitsandbytes' 4-bit (nf4, fp4, double
 * quantization included) and 8-bit (LLM.int8) weights. Anything else (integer compressed-tensors,
 * Marlin-packed GPTQ, AWQ's GEMV layouts, ...) has a {@link #refusal}.
 *
 * @param field     the config field it came from
 * @param method    {@code quant_method} (or {@code format})
 * @param scheme    how the weights are stored, or null where none jvllm reads
 * @param blockSize {@code weight_block_size} [rows, columns] of float8 scales, or null
 * @param bits      the quantized width (GPTQ, AWQ, bitsandbytes), else 0
 * @param groupSize the inputs one scale covers (GPTQ, AWQ; -1: all of them), else 0
 * @param refusal   why jvllm cannot read these weights, or null where it can
 */
public record Quantization(String field, String method, Scheme scheme, int[] blockSize, int bits, int groupSize,
                           String refusal) {

    /** The stored forms jvllm decodes. */
    public enum Scheme {
        /** 8-bit floats times a scale (a tensor's, a row's or a block's). */
        FLOAT8,
        /** AutoGPTQ's packing, zeros stored less one. */
        GPTQ,
        /** GPTQModel's "gptq_v2" packing, zeros stored as they are. */
        GPTQ_V2,
        /** AutoAWQ's GEMM packing. */
        AWQ,
        /** bitsandbytes' serialized 4-bit or 8-bit weights. */
        BITSANDBYTES
    }

    /** The checkpoint's quantization, if config.json declares one. */
    public static Optional<Quantization> of(ModelConfig config) {
        for (String field : new String[]{"quantization_config", "compression_config"}) {
            JsonNode node = config.raw().get(field);
            if (node == null || node.isNull()) continue;
            String method = node.path("quant_method").asText(node.path("format").asText("unnamed"));
            return Optional.of(switch (method.toLowerCase(Locale.ROOT)) {
                case "gptq" -> gptq(field, method, node);
                case "awq" -> awq(field, method, node);
                case "bitsandbytes" -> bitsAndBytes(field, method, node);
                default -> {
                    int[] block = null;
                    JsonNode blockNode = node.get("weight_block_size");
                    if (blockNode != null && blockNode.isArray() && blockNode.size() == 2) {
                        block = new int[]{blockNode.get(0).asInt(), blockNode.get(1).asInt()};
                    }
                    boolean float8 = method.equals("fp8") || (method.equals("compressed-tensors") && float8Groups(node));
                    yield float8 ? new Quantization(field, method, Scheme.FLOAT8, block, 8, 0, null)
                            : new Quantization(field, method, null, null, 0, 0, "jvllm reads float8, GPTQ, AWQ and bitsandbytes weights only");
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
        Scheme scheme = switch (format) {
            case "gptq" -> Scheme.GPTQ;
            case "gptq_v2" -> Scheme.GPTQ_V2;
            default -> null;
        };
        String refusal = null;
        if (scheme == null || node.path("is_marlin_format").asBoolean(false)) {
            refusal = "GPTQ's '" + (scheme == null ? format : "marlin") + "' checkpoint format is not read (only 'gptq' and 'gptq_v2')";
        } else if (bits != 2 && bits != 4 && bits != 8) {
            refusal = "GPTQ of " + (bits == 0 ? "no declared" : bits) + " bits is not read (only 2, 4 and 8)";
        } else if (groupSize == 0 || groupSize < -1) {
            refusal = "GPTQ's group_size " + groupSize + " is neither positive nor -1";
        }
        return new Quantization(field, method, scheme, null, bits, groupSize, refusal);
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
        return new Quantization(field, method, Scheme.AWQ, null, bits, groupSize, refusal);
    }

    private static Quantization bitsAndBytes(String field, String method, JsonNode node) {
        boolean fourBit = node.path("load_in_4bit").asBoolean(false), eightBit = node.path("load_in_8bit").asBoolean(false);
        String storage = node.path("bnb_4bit_quant_storage").asText("uint8").toLowerCase(Locale.ROOT);
        String refusal = null;
        if (fourBit == eightBit) {
            refusal = "bitsandbytes' config says " + (fourBit ? "both" : "neither") + " of load_in_4bit and load_in_8bit";
        } else if (fourBit && !storage.equals("uint8")) {
            refusal = "bitsandbytes' 4-bit weights stored as " + storage + " are not read (only uint8)";
        }
        return new Quantization(field, method, Scheme.BITSANDBYTES, null, fourBit ? 4 : 8, 0, refusal);
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
