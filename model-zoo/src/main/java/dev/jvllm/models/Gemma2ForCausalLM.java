package dev.jvllm.models;

import dev.jvllm.models.layers.DecoderOptions;
import dev.jvllm.models.layers.DecoderOptions.Feature;
import dev.jvllm.models.layers.PreNormArchitecture;
import dev.jvllm.models.layers.SlidingWindows;

import java.util.List;

import static dev.jvllm.models.layers.ConfigValues.numberOrOff;

/**
 * Gemma 2: Gemma with norms after attention and MLP as well as before, attention scores scaled by
 * {@code query_pre_attn_scalar}^-½ and tanh soft-capped, sliding-window and global layers
 * alternating, and soft-capped final logits.
 */
public final class Gemma2ForCausalLM extends PreNormArchitecture {

    public Gemma2ForCausalLM() {
        super(List.of("Gemma2ForCausalLM"), config -> GemmaForCausalLM.gemma(config)
                .with(Feature.SANDWICH_NORMS)
                .attentionScores((float) (1 / Math.sqrt(numberOrOff(config, "query_pre_attn_scalar", 256))),
                        (float) numberOrOff(config, "attn_logit_softcapping", 50))
                .slidingWindows(SlidingWindows.alternating(config))
                .finalLogitSoftcap((float) numberOrOff(config, "final_logit_softcapping", 30))
                .build());
    }

    @Override
    public List<String> modelTypes() {
        return List.of("gemma2");
    }
}
