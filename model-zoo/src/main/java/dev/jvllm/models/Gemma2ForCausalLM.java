package dev.jvllm.models;

import dev.jvllm.config.ModelConfig;
import dev.jvllm.models.layers.DecoderOptions;
import dev.jvllm.models.layers.PreNormArchitecture;
import dev.jvllm.models.layers.SlidingWindows;

import static dev.jvllm.models.layers.ConfigValues.numberOrOff;

/**
 * Gemma 2: Gemma with norms after attention and MLP as well as before, attention scores scaled by
 * {@code query_pre_attn_scalar}^-½ and tanh soft-capped, sliding-window and global layers
 * alternating, and soft-capped final logits.
 */
public final class Gemma2ForCausalLM {

    private Gemma2ForCausalLM() {
    }

    /** The registry entry. */
    public static final class Architecture extends PreNormArchitecture {
        public Architecture() {
            super("Gemma2ForCausalLM");
        }

        @Override
        protected DecoderOptions options(ModelConfig config) {
            double queryScalar = numberOrOff(config, "query_pre_attn_scalar", 256);
            return GemmaForCausalLM.gemma(config)
                    .sandwichNorms()
                    .attentionScores((float) (1 / Math.sqrt(queryScalar)), (float) numberOrOff(config, "attn_logit_softcapping", 50))
                    .slidingWindows(SlidingWindows.alternating(config))
                    .finalLogitSoftcap((float) numberOrOff(config, "final_logit_softcapping", 30))
                    .build();
        }
    }
}
