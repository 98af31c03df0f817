package dev.jvllm.models;

import dev.jvllm.config.ModelConfig;
import dev.jvllm.models.layers.DecoderOptions;
import dev.jvllm.models.layers.ExpertRouter;
import dev.jvllm.models.layers.MixtureOfExperts;
import dev.jvllm.models.layers.MultiHeadLatentAttention;
import dev.jvllm.models.layers.PreNormArchitecture;
import dev.jvllm.models.layers.WeightScope;
import dev.jvllm.weights.WeightValues;

import java.util.List;

/**
 * DeepSeek-V3 and R1: DeepSeek-V2's latent attention (its rotary pairs adjacent while
 * {@code rope_interleave}, as by default) with routers that score experts by sigmoid, choose within
 * the {@code topk_group} of {@code n_group} groups whose two best biased scores sum highest, add
 * {@code e_score_correction_bias} only to choose, renormalize when {@code norm_topk_prob}, and scale
 * by {@code routed_scaling_factor} ("noaux_tc", arXiv:2412.19437 §2.1.2).
 */
public final class DeepseekV3ForCausalLM extends PreNormArchitecture {

    public DeepseekV3ForCausalLM() {
        super(List.of("DeepseekV3ForCausalLM"), config -> DecoderOptions.builder(config)
                .attention(MultiHeadLatentAttention.loader(config, !config.bool("rope_interleave", true)))
                .feedForward(MixtureOfExperts.deepSeek(config, gate -> router(config, gate)))
                .build());
    }

    static ExpertRouter router(ModelConfig config, WeightScope gate) {
        int experts = config.intOr(0, "n_routed_experts");
        float[] bias = gate.has("e_score_correction_bias")
                ? WeightValues.floats(gate.checkpoint().get(gate.prefix() + "e_score_correction_bias"))
                : null;
        return new ExpertRouter(experts, config.intOr(0, "num_experts_per_tok"), ExpertRouter.Scoring.SIGMOID,
                config.intOr(1, "n_group"), config.intOr(1, "topk_group"), ExpertRouter.GroupScore.BEST_TWO, bias,
                config.bool("norm_topk_prob", true), (float) config.doubleOr(2.5, "routed_scaling_factor"));
    }

    @Override
    public List<String> modelTypes() {
        return List.of("deepseek_v3");
    }
}
