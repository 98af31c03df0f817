package dev.jvllm.models;

import dev.jvllm.config.ConfigException;
import dev.jvllm.config.ModelConfig;
import dev.jvllm.models.layers.DecoderOptions;
import dev.jvllm.models.layers.ExpertRouter;
import dev.jvllm.models.layers.MixtureOfExperts;
import dev.jvllm.models.layers.MultiHeadLatentAttention;
import dev.jvllm.models.layers.PreNormArchitecture;

import java.util.List;

/**
 * DeepSeek-V2 (and V2-Lite, V2.5, Coder-V2): multi-head latent attention whose rotary part rotates
 * adjacent pairs, and DeepSeekMoE layers whose router takes the softmax of its logits and picks the
 * top k greedily ({@code topk_method: greedy}) or within the {@code topk_group} of {@code n_group}
 * groups with the best single expert ({@code group_limited_greedy}); weights are scaled by
 * {@code routed_scaling_factor}, or renormalized instead when {@code norm_topk_prob} and k > 1.
 */
public final class DeepseekV2ForCausalLM extends PreNormArchitecture {

    public DeepseekV2ForCausalLM() {
        super(List.of("DeepseekV2ForCausalLM"), config -> DecoderOptions.builder(config)
                .attention(MultiHeadLatentAttention.loader(config, false))
                .feedForward(MixtureOfExperts.deepSeek(config, gate -> router(config)))
                .build());
    }

    static ExpertRouter router(ModelConfig config) {
        int experts = config.intOr(0, "n_routed_experts");
        int topK = config.intOr(0, "num_experts_per_tok");
        String method = config.raw().path("topk_method").asText("greedy");
        int groups = 1, kept = 1;
        switch (method) {
            case "greedy" -> { }
            case "group_limited_greedy" -> {
                groups = config.intOr(1, "n_group");
                kept = config.intOr(1, "topk_group");
            }
            default -> throw new ConfigException(config.source() + ": field 'topk_method' is '" + method
                    + "'; DeepSeek-V2 routes by 'greedy' or 'group_limited_greedy'");
        }
        boolean normalize = topK > 1 && config.bool("norm_topk_prob", false);
        float scaling = normalize ? 1f : (float) config.doubleOr(1.0, "routed_scaling_factor");
        return new ExpertRouter(experts, topK, ExpertRouter.Scoring.SOFTMAX, groups, kept,
                ExpertRouter.GroupScore.BEST, null, normalize, scaling);
    }

    @Override
    public List<String> modelTypes() {
        return List.of("deepseek_v2");
    }
}
