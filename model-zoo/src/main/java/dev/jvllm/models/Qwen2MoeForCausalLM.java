package dev.jvllm.models;

import dev.jvllm.models.layers.DecoderOptions;
import dev.jvllm.models.layers.MixtureOfExperts;
import dev.jvllm.models.layers.PreNormArchitecture;
import dev.jvllm.models.layers.SlidingWindows;

import java.util.List;

/**
 * Qwen1.5-MoE and Qwen2-MoE: Qwen2 (q, k, v biases when {@code qkv_bias}, as by default) whose MLPs
 * are mixtures of experts with a shared expert gated per token by a sigmoid, on the layers
 * {@code decoder_sparse_step} and {@code mlp_only_layers} leave sparse.
 */
public final class Qwen2MoeForCausalLM extends PreNormArchitecture {

    public Qwen2MoeForCausalLM() {
        super(List.of("Qwen2MoeForCausalLM"), config -> DecoderOptions.builder(config)
                .attentionBiases(config.bool("qkv_bias", true), false)
                .slidingWindows(SlidingWindows.qwen(config))
                .feedForward(MixtureOfExperts.qwen(config))
                .build());
    }

    @Override
    public List<String> modelTypes() {
        return List.of("qwen2_moe");
    }
}
