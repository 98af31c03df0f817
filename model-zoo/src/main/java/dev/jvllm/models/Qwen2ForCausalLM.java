package dev.jvllm.models;

import dev.jvllm.models.layers.DecoderOptions;
import dev.jvllm.models.layers.PreNormArchitecture;
import dev.jvllm.models.layers.SlidingWindows;

import java.util.List;

/**
 * Qwen2 and Qwen2.5: Llama with biases on the q, k and v projections (never on o), tied
 * embeddings on the small models, and optional sliding-window layers.
 */
public final class Qwen2ForCausalLM extends PreNormArchitecture {

    public Qwen2ForCausalLM() {
        super(List.of("Qwen2ForCausalLM"), config -> DecoderOptions.builder(config)
                .attentionBiases(true, false)
                .slidingWindows(SlidingWindows.qwen(config))
                .build());
    }

    @Override
    public List<String> modelTypes() {
        return List.of("qwen2");
    }
}
