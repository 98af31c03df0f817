package dev.jvllm.models;

import dev.jvllm.config.ModelConfig;
import dev.jvllm.models.layers.DecoderOptions;
import dev.jvllm.models.layers.PreNormArchitecture;
import dev.jvllm.models.layers.SlidingWindows;

/**
 * Mistral: Llama whose every layer attends through a sliding window of {@code sliding_window}
 * tokens (4096 when the field is absent, none when it is null, as from v0.2 on).
 */
public final class MistralForCausalLM {

    private MistralForCausalLM() {
    }

    /** The registry entry. */
    public static final class Architecture extends PreNormArchitecture {
        public Architecture() {
            super("MistralForCausalLM");
        }

        @Override
        protected DecoderOptions options(ModelConfig config) {
            return DecoderOptions.builder(config)
                    .slidingWindows(SlidingWindows.everyLayer(config, 4096))
                    .build();
        }
    }
}
