package dev.jvllm.models;

import dev.jvllm.config.ModelConfig;
import dev.jvllm.models.layers.DecoderOptions;
import dev.jvllm.models.layers.PreNormArchitecture;
import dev.jvllm.models.layers.SlidingWindows;

/**
 * Qwen3: Llama with an RMSNorm on every query and key head before rotary (QK-norm), an explicit
 * head_dim, and Qwen's optional sliding-window layers.
 */
public final class Qwen3ForCausalLM {

    private Qwen3ForCausalLM() {
    }

    /** The registry entry. */
    public static final class Architecture extends PreNormArchitecture {
        public Architecture() {
            super("Qwen3ForCausalLM");
        }

        @Override
        protected DecoderOptions options(ModelConfig config) {
            return DecoderOptions.builder(config)
                    .qkNorm()
                    .slidingWindows(SlidingWindows.qwen(config))
                    .build();
        }
    }
}
