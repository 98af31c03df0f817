package dev.jvllm.models;

import dev.jvllm.models.layers.DecoderOptions;
import dev.jvllm.models.layers.PreNormArchitecture;
import dev.jvllm.models.layers.SlidingWindows;
import dev.jvllm.models.layers.WeightNames;
import dev.jvllm.models.layers.WeightNames.QkvLayout;

import java.util.List;

/**
 * Phi-3 (and Phi-3.5, Phi-4-mini): Llama with fused {@code qkv_proj} and {@code gate_up_proj}
 * matrices, used as row views, a sliding window on every layer when {@code sliding_window} is set,
 * and LongRoPE ("longrope", formerly "su") scaling with its short and long factors.
 */
public final class Phi3ForCausalLM extends PreNormArchitecture {

    public Phi3ForCausalLM() {
        super(List.of("Phi3ForCausalLM"), config -> DecoderOptions.builder(config)
                .names(WeightNames.LLAMA.attention("self_attn", "o_proj", QkvLayout.BLOCKS, "qkv_proj")
                        .mlp("mlp", "down_proj", "gate_up_proj"))
                .slidingWindows(SlidingWindows.everyLayer(config, 0))
                .build());
    }

    @Override
    public List<String> modelTypes() {
        return List.of("phi3");
    }
}
