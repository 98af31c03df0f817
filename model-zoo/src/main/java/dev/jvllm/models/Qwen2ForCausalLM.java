package dev.jvllm.models;

import dev.jvllm.config.ModelConfig;
import dev.jvllm.models.layers.DecoderOptions;
import dev.jvllm.models.layers.PreNormArchitecture;
import dev.jvllm.models.layers.SlidingWindows;

/**
 * Qwen2 and Qwen2.5: Llama with biases on the q, k and v projections (never on o), tied
 * embeddings on the small models, and optional sliding-window layers.
 */
public final class Qwen2ForCausalLM {

    private Qwen2ForCausalLM() {
    }

    /** The registry entry. */
    public static final class Architecture extends PreNormArchitecture {
        public Architecture() {
            super("Qwen2ForCausalLM");
        }

        @Override
        protected DecoderOptions options(ModelConfig config) {
            return DecoderOptions.builder(config)
                    .attentionBiases(true, false)
                    .slidingWindows(SlidingWindows.qwen(config))
                    .build();
        }
    }
}
