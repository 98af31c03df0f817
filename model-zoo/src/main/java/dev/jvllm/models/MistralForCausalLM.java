package dev.jvllm.models;

import dev.jvllm.models.layers.DecoderOptions;
import dev.jvllm.models.layers.PreNormArchitecture;
import dev.jvllm.models.layers.SlidingWindows;

import java.util.List;

/**
 * Mistral: Llama whose every layer attends through a sliding window of {@code sliding_window}
 * tokens (4096 when the field is absent, none when it is null, as from v0.2 on).
 */
public final class MistralForCausalLM extends PreNormArchitecture {

    public MistralForCausalLM() {
        super(List.of("MistralForCausalLM"), config -> DecoderOptions.builder(config)
                .slidingWindows(SlidingWindows.everyLayer(config, 4096))
                .build());
    }

    @Override
    public List<String> modelTypes() {
        return List.of("mistral");
    }
}
