package dev.jvllm.models;

import dev.jvllm.models.layers.DecoderOptions;
import dev.jvllm.models.layers.DecoderOptions.Feature;
import dev.jvllm.models.layers.PreNormArchitecture;
import dev.jvllm.models.layers.SlidingWindows;

import java.util.List;

/**
 * Qwen3: Llama with an RMSNorm on every query and key head before rotary (QK-norm), an explicit
 * head_dim, and Qwen's optional sliding-window layers.
 */
public final class Qwen3ForCausalLM extends PreNormArchitecture {

    public Qwen3ForCausalLM() {
        super(List.of("Qwen3ForCausalLM"), config -> DecoderOptions.builder(config)
                .with(Feature.QK_NORM)
                .slidingWindows(SlidingWindows.qwen(config))
                .build());
    }

    @Override
    public List<String> modelTypes() {
        return List.of("qwen3");
    }
}
