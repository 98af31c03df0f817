package dev.jvllm.models;

import dev.jvllm.config.ConfigException;
import dev.jvllm.config.ModelConfig;
import dev.jvllm.models.layers.ConfigValues;
import dev.jvllm.models.layers.DecoderOptions;
import dev.jvllm.models.layers.ExpertRouter;
import dev.jvllm.models.layers.MixtureOfExperts;
import dev.jvllm.models.layers.PreNormArchitecture;

import java.util.List;

/**
 * DeepSeek-MoE (deepseek-moe-16b, the Hub's {@code DeepseekForCausalLM}, which Transformers does
 * not ship): Llama's attention and DeepSeek-V2's mixture layers, which it introduced. Layers from
 * {@code first_k_dense_replace} on, every {@code moe_layer_freq}-th, route each token to
 * {@code num_experts_per_tok} of {@code n_routed_experts} by the softmax of the gate's logits (the
 * chosen weights renormalized when {@code norm_topk_prob} and more than one), and add
 * {@code n_shared_experts} shared experts; the others are dense MLPs.
 */
public final class DeepseekForCausalLM extends PreNormArchitecture {

    public DeepseekForCausalLM() {
        super(List.of("DeepseekForCausalLM"), config -> DecoderOptions.builder(config)
                .feedForward(MixtureOfExperts.deepSeek(config, gate -> router(config)))
                .build());
    }

    /**
     * Greedy top k over the softmax of the gate's logits, unscaled (so routed on the device, and a decode
     * step may run as a CUDA graph); V2's {@code topk_method} and {@code routed_scaling_factor} are not
     * read, as the Hub's modeling code does not read them.
     */
    static ExpertRouter router(ModelConfig config) {
        String scoring = config.raw().path("scoring_func").asText("softmax");
        if (!scoring.equals("softmax")) {
            throw new ConfigException(config.source() + ": field 'scoring_func' is '" + scoring
                    + "'; DeepSeek-MoE scores its experts by 'softmax'");
        }
        int experts = ConfigValues.positiveInt(config, "n_routed_experts", "a mixture of experts");
        int topK = ConfigValues.positiveInt(config, "num_experts_per_tok", "a mixture of experts");
        if (topK > experts) {
            throw new ConfigException(config.source() + ": field 'num_experts_per_tok' is " + topK
                    + ", more than the " + experts + " experts of n_routed_experts");
        }
        return ExpertRouter.softmaxTopK(experts, topK, topK > 1 && config.bool("norm_topk_prob", false));
    }

    @Override
    public List<String> modelTypes() {
        return List.of("deepseek");
    }
}
