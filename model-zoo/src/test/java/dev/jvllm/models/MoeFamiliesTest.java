package dev.jvllm.models;

import dev.jvllm.config.ConfigException;
import dev.jvllm.config.ModelConfig;
import dev.jvllm.models.layers.ExpertRouter;
import dev.jvllm.models.layers.RandomCheckpoint;
import dev.jvllm.spi.Backend;
import dev.jvllm.spi.BackendOptions;
import dev.jvllm.spi.Backends;
import dev.jvllm.spi.ModelArchitecture;
import dev.jvllm.spi.ModelContext;
import dev.jvllm.spi.ModelRegistry;
import org.junit.jupiter.api.Test;

import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The mixture-of-experts families: registry entries, how their configs choose routing, and config errors. */
class MoeFamiliesTest {

    @Test
    void everyMoeFamilyIsFoundByItsArchitectureName() {
        Map<String, Class<? extends ModelArchitecture>> expected = Map.of(
                "MixtralForCausalLM", MixtralForCausalLM.class,
                "Qwen2MoeForCausalLM", Qwen2MoeForCausalLM.class,
                "Qwen3MoeForCausalLM", Qwen3MoeForCausalLM.class,
                "DeepseekV2ForCausalLM", DeepseekV2ForCausalLM.class,
                "DeepseekV3ForCausalLM", DeepseekV3ForCausalLM.class);
        expected.forEach((name, type) -> assertInstanceOf(type,
                ModelRegistry.find(ModelConfig.parse("{\"architectures\": [\"" + name + "\"]}")), name));
    }

    @Test
    void deepSeekV2GroupLimitedGreedyKeepsTopkGroupOfNGroupGroups() {
        ExpertRouter router = DeepseekV2ForCausalLM.router(ModelConfig.parse("""
                {"n_routed_experts": 160, "num_experts_per_tok": 6, "topk_method": "group_limited_greedy",
                 "n_group": 8, "topk_group": 3, "routed_scaling_factor": 16.0, "norm_topk_prob": false}"""));
        assertEquals(new ExpertRouter(160, 6, ExpertRouter.Scoring.SOFTMAX, 8, 3, ExpertRouter.GroupScore.BEST, null,
                false, 16f).toString(), router.toString());
    }

    @Test
    void deepSeekV2RenormalizesInsteadOfScalingWhenNormTopkProbAndMoreThanOneExpert() {
        ExpertRouter router = DeepseekV2ForCausalLM.router(ModelConfig.parse("""
                {"n_routed_experts": 64, "num_experts_per_tok": 6, "norm_topk_prob": true, "routed_scaling_factor": 2.0}"""));
        assertTrue(router.normalize());
        assertEquals(1f, router.scalingFactor());
    }

    @Test
    void anUnknownDeepSeekV2RoutingMethodIsRefusedNamingTheField() {
        var e = assertThrows(ConfigException.class, () -> DeepseekV2ForCausalLM.router(ModelConfig.parse("""
                {"n_routed_experts": 8, "num_experts_per_tok": 2, "topk_method": "noaux_tc"}""")));
        assertTrue(e.getMessage().contains("'topk_method'"), e.getMessage());
    }

    @Test
    void aMixtralConfigWithoutExpertsIsRefusedNamingTheField() {
        ModelConfig config = ModelConfig.parse("""
                {"architectures": ["MixtralForCausalLM"], "hidden_size": 32, "intermediate_size": 64,
                 "num_hidden_layers": 1, "num_attention_heads": 4, "vocab_size": 64, "num_experts_per_tok": 2}""");
        try (Backend backend = Backends.create("cpu", BackendOptions.defaults());
             RandomCheckpoint empty = new RandomCheckpoint(0)) {
            var e = assertThrows(ConfigException.class,
                    () -> ModelRegistry.find(config).load(new ModelContext(config, empty, backend, 64)));
            assertTrue(e.getMessage().contains("'num_local_experts'"), e.getMessage());
        }
    }
}
