package dev.jvllm.models;

import dev.jvllm.config.ModelConfig;
import dev.jvllm.models.layers.DecoderOptions;
import dev.jvllm.models.layers.PreNormArchitecture;
import dev.jvllm.models.layers.SlidingWindows;

/**
 * Phi-3 (and Phi-3.5, Phi-4-mini): Llama with fused {@code qkv_proj} and {@code gate_up_proj}
 * matrices, used as row views, a sliding window on every layer when {@code sliding_window} is set,
 * and LongRoPE ("longrope", formerly "su") scaling with its short and long factors.
 */
public final class Phi3ForCausalLM {

    private Phi3ForCausalLM() {
    }

    /** The registry entry. */
    public static final class Architecture extends PreNormArchitecture {
        public Architecture() {
            super("Phi3ForCausalLM");
        }

        @Override
        protected DecoderOptions options(ModelConfig config) {
            return DecoderOptions.builder(config)
                    .fusedProjections()
                    .slidingWindows(SlidingWindows.everyLayer(config, 0))
                    .build();
        }
    }
}
