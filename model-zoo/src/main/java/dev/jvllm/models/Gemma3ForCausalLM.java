package dev.jvllm.models;

import com.fasterxml.jackson.databind.node.MissingNode;
import dev.jvllm.config.ModelConfig;
import dev.jvllm.config.RopeConfig;
import dev.jvllm.models.layers.DecoderOptions.Feature;
import dev.jvllm.models.layers.PreNormArchitecture;
import dev.jvllm.models.layers.SlidingWindows;

import java.util.List;

import static dev.jvllm.models.layers.ConfigValues.numberOrOff;

/**
 * Gemma 3 (text: {@code google/gemma-3-1b-it} and text-only checkpoints): Gemma 2's sandwich norms
 * and {@code query_pre_attn_scalar}, plus a (1 + w) RMSNorm on every query and key head; five
 * sliding-window layers to one global (or as {@code layer_types} says), the sliding layers rotating
 * with their own base ({@code rope_local_base_freq}, or rope_parameters' "sliding_attention" set)
 * and the global ones with {@code rope_theta} and its scaling; no soft-capping unless configured.
 */
public final class Gemma3ForCausalLM extends PreNormArchitecture {

    public Gemma3ForCausalLM() {
        super(List.of("Gemma3ForCausalLM"), config -> GemmaForCausalLM.gemma(config)
                .with(Feature.SANDWICH_NORMS, Feature.QK_NORM)
                .attentionScores((float) (1 / Math.sqrt(numberOrOff(config, "query_pre_attn_scalar", 256))),
                        (float) numberOrOff(config, "attn_logit_softcapping", 0))
                .slidingWindows(SlidingWindows.allButEveryNth(config))
                .finalLogitSoftcap((float) numberOrOff(config, "final_logit_softcapping", 0))
                .localRope(localRope(config))
                .build());
    }

    /** The sliding layers' rotary settings: Transformers 5's per-layer-type set, else the local base without scaling. */
    static RopeConfig localRope(ModelConfig config) {
        if (config.raw().path("rope_parameters").has("sliding_attention")) {
            return config.rope("sliding_attention");
        }
        RopeConfig global = config.rope();
        return new RopeConfig(config.doubleOr(10_000.0, "rope_local_base_freq"), "default", 1.0, global.originalMaxPositions(),
                global.partialRotaryFactor(), MissingNode.getInstance());
    }

    @Override
    public List<String> modelTypes() {
        return List.of("gemma3_text");
    }
}
