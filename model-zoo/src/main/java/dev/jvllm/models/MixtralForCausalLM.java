package dev.jvllm.models;

import dev.jvllm.models.layers.DecoderOptions;
import dev.jvllm.models.layers.MixtureOfExperts;
import dev.jvllm.models.layers.PreNormArchitecture;
import dev.jvllm.models.layers.SlidingWindows;

import java.util.List;

/**
 * Mixtral: Mistral whose MLP is a sparse mixture of {@code num_local_experts} SwiGLU experts, each
 * token sent to the {@code num_experts_per_tok} best with their softmax weights renormalized
 * (arXiv:2401.04088); a sliding window on every layer only when {@code sliding_window} is set.
 */
public final class MixtralForCausalLM extends PreNormArchitecture {

    public MixtralForCausalLM() {
        super(List.of("MixtralForCausalLM"), config -> DecoderOptions.builder(config)
                .slidingWindows(SlidingWindows.everyLayer(config, 0))
                .feedForward(MixtureOfExperts.mixtral(config))
                .build());
    }

    @Override
    public List<String> modelTypes() {
        return List.of("mixtral");
    }
}
