package dev.jvllm.models;

import dev.jvllm.config.ModelConfig;
import dev.jvllm.models.layers.DecoderOptions;
import dev.jvllm.models.layers.PreNormArchitecture;
import dev.jvllm.spi.Activation;
import dev.jvllm.weights.DType;

import java.util.List;

/**
 * Gemma: Llama with (1 + w) RMSNorm weights, a GeGLU MLP (tanh-approximated GELU), embeddings
 * scaled by √hidden, an explicit head_dim and tied embeddings.
 */
public final class GemmaForCausalLM extends PreNormArchitecture {

    public GemmaForCausalLM() {
        super(List.of("GemmaForCausalLM"), config -> gemma(config).build());
    }

    /** Gemma's differences from Llama, which Gemma 2 keeps. */
    static DecoderOptions.Builder gemma(ModelConfig config) {
        return DecoderOptions.builder(config)
                .normWeightOffset(1f)
                .mlpActivation(activation(config))
                .embeddingScale(normalizer(config));
    }

    /**
     * {@code hidden_activation}, else {@code hidden_act}; a bare "gelu" in the latter means the tanh
     * approximation Gemma was trained with (Transformers PR 29402, as vLLM reads it).
     */
    static Activation activation(ModelConfig config) {
        String named = config.raw().path("hidden_activation").asText(null);
        if (named != null) {
            return Activation.fromConfig(named);
        }
        String legacy = config.raw().path("hidden_act").asText("gelu_pytorch_tanh");
        return legacy.equals("gelu") ? Activation.GELU_TANH : Activation.fromConfig(legacy);
    }

    /** √hidden in the checkpoint's dtype, as Transformers multiplies by it (√3072 = 55.4256 is 55.5 in bfloat16). */
    static float normalizer(ModelConfig config) {
        float root = (float) Math.sqrt(config.hiddenSize());
        return switch (config.dtype().orElse(DType.F32)) {
            case BF16 -> {
                int bits = Float.floatToRawIntBits(root);
                bits += 0x7FFF + ((bits >>> 16) & 1); // round to nearest even on the kept 16 bits
                yield Float.intBitsToFloat(bits & 0xFFFF0000);
            }
            case F16 -> Float.float16ToFloat(Float.floatToFloat16(root));
            default -> root;
        };
    }

    @Override
    public List<String> modelTypes() {
        return List.of("gemma");
    }
}
