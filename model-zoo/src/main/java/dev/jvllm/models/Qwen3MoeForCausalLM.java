package dev.jvllm.models;

import dev.jvllm.models.layers.DecoderOptions;
import dev.jvllm.models.layers.DecoderOptions.Feature;
import dev.jvllm.models.layers.MixtureOfExperts;
import dev.jvllm.models.layers.PreNormArchitecture;
import dev.jvllm.models.layers.SlidingWindows;

import java.util.List;

/**
 * Qwen3-MoE: Qwen3 (QK-norm, explicit head_dim) with Qwen-MoE's sparse layers and no shared expert.
 */
public final class Qwen3MoeForCausalLM extends PreNormArchitecture {

    public Qwen3MoeForCausalLM() {
        super(List.of("Qwen3MoeForCausalLM"), config -> DecoderOptions.builder(config)
                .with(Feature.QK_NORM)
                .slidingWindows(SlidingWindows.qwen(config))
                .feedForward(MixtureOfExperts.qwen(config))
                .build());
    }

    @Override
    public List<String> modelTypes() {
        return List.of("qwen3_moe");
    }
}
