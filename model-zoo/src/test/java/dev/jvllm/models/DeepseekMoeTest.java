package dev.jvllm.models;

import dev.jvllm.config.ConfigException;
import dev.jvllm.config.ModelConfig;
import dev.jvllm.models.layers.ExpertRouter;
import dev.jvllm.spi.ModelRegistry;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * DeepSeek-MoE (DeepseekForCausalLM), whose Hub code Transformers does not ship, against Transformers'
 * float32 logits of the native models it is made of: a dense config is Llama (llama-plain rewritten),
 * and routed layers that renormalize their top 2 of 8 experts are Mixtral's (mixtral-top2 rewritten
 * into DeepSeek's names). Its shared experts and dense first layers are DeepSeek-V2's loader, which the
 * V2 goldens check.
 */
class DeepseekMoeTest {

    @TempDir
    Path temp;

    @Test
    void isFoundByItsArchitectureName() {
        assertInstanceOf(DeepseekForCausalLM.class,
                ModelRegistry.find(ModelConfig.parse("{\"architectures\": [\"DeepseekForCausalLM\"], \"model_type\": \"deepseek\"}")));
    }

    @Test
    void aDenseConfigIsLlama() {
        Golden dense = RepackedGolden.of("llama-plain")
                .write(temp.resolve("dense"), "DeepseekForCausalLM", config -> config.put("model_type", "deepseek"));
        GoldenChecks.logitsMatchAtEveryPosition(dense);
    }

    @Test
    void routedLayersThatRenormalizeTheirTopTwoAreMixtrals() {
        assertMixtralsLogitsBeforeItsWindow(mixtralAsDeepseek(temp.resolve("renormalized"), true, SharedExpert.NONE), "cpu");
    }

    /** mixtral-top2 has a sliding window of 16, which DeepSeek-MoE has not: the positions it does not reach. */
    static void assertMixtralsLogitsBeforeItsWindow(Golden golden, String backend) {
        double[][] errors = GoldenChecks.relativeLogitErrors(golden, backend);
        for (int i = 0; i < errors.length; i++) {
            for (int p = 0; p < Math.min(16, errors[i].length); p++) {
                assertTrue(errors[i][p] < 1e-4, backend + ", prompt " + i + " position " + p + ": relative logit error " + errors[i][p]);
            }
        }
    }

    @Test
    void sharedExpertsAddTheirOutputAndUnnormalizedWeightsChangeTheLogits() {
        // A shared expert whose down projection is zero adds nothing: the logits stay Mixtral's; with
        // expert 3's weights it adds that expert to every token: they move.
        assertMixtralsLogitsBeforeItsWindow(mixtralAsDeepseek(temp.resolve("shared"), true, SharedExpert.ZERO), "cpu");
        double[][] added = GoldenChecks.relativeLogitErrors(mixtralAsDeepseek(temp.resolve("shared-added"), true, SharedExpert.EXPERT_3));
        assertTrue(added[2][5] > 1e-3, "position 5 of the longest prompt: " + added[2][5]);
        // The top two's softmax weights as they are (norm_topk_prob false) sum below one: the logits move.
        double[][] unnormalized = GoldenChecks.relativeLogitErrors(mixtralAsDeepseek(temp.resolve("unnormalized"), false, SharedExpert.NONE));
        assertTrue(unnormalized[2][5] > 1e-3, "position 5 of the longest prompt: " + unnormalized[2][5]);
    }

    @Test
    void deepseekMoe16bRoutesToSixOfSixtyFourUnnormalized() {
        // The fields that matter from deepseek-ai/deepseek-moe-16b-base's config.json.
        ExpertRouter router = DeepseekForCausalLM.router(ModelConfig.parse("""
                {"architectures": ["DeepseekForCausalLM"], "model_type": "deepseek", "n_routed_experts": 64,
                 "num_experts_per_tok": 6, "norm_topk_prob": false, "scoring_func": "softmax", "n_shared_experts": 2,
                 "first_k_dense_replace": 1, "moe_layer_freq": 1, "moe_intermediate_size": 1408}"""));
        assertEquals(64, router.numExperts());
        assertEquals(6, router.topK());
        assertEquals(ExpertRouter.Scoring.SOFTMAX, router.scoring());
        assertEquals(1, router.groups());
        assertFalse(router.normalize());
        assertEquals(1f, router.scalingFactor());
        assertTrue(router.isPlainSoftmaxTopK(), "routed where the logits are, as Mixtral's");
    }

    @Test
    void anotherScoringAndImpossibleExpertCountsAreRefusedByName() {
        ConfigException refused = assertThrows(ConfigException.class, () -> DeepseekForCausalLM.router(ModelConfig.parse(
                "{\"n_routed_experts\": 8, \"num_experts_per_tok\": 2, \"scoring_func\": \"sigmoid\"}")));
        assertTrue(refused.getMessage().contains("field 'scoring_func' is 'sigmoid'"), refused.getMessage());
        ConfigException tooMany = assertThrows(ConfigException.class, () -> DeepseekForCausalLM.router(ModelConfig.parse(
                "{\"n_routed_experts\": 8, \"num_experts_per_tok\": 9}")));
        assertTrue(tooMany.getMessage().contains("field 'num_experts_per_tok' is 9, more than the 8 experts"), tooMany.getMessage());
        ConfigException none = assertThrows(ConfigException.class, () -> DeepseekForCausalLM.router(ModelConfig.parse(
                "{\"n_routed_experts\": 8, \"num_experts_per_tok\": 0}")));
        assertTrue(none.getMessage().contains("num_experts_per_tok"), none.getMessage());
    }

    /** The shared expert the rewritten checkpoint gets: none, one that adds nothing, or a copy of routed expert 3. */
    enum SharedExpert { NONE, ZERO, EXPERT_3 }

    /** mixtral-top2 in DeepSeek-MoE's names and fields, with {@code shared} as its shared expert. */
    static Golden mixtralAsDeepseek(Path directory, boolean renormalize, SharedExpert shared) {
        RepackedGolden repacked = RepackedGolden.of("mixtral-top2").rename(".block_sparse_moe.", ".mlp.")
                .rename(".w1.", ".gate_proj.").rename(".w3.", ".up_proj.").rename(".w2.", ".down_proj.");
        if (shared != SharedExpert.NONE) {
            for (int layer = 0; layer < 2; layer++) {
                String expert = "model.layers." + layer + ".mlp.experts.3.", scope = "model.layers." + layer + ".mlp.shared_experts.";
                repacked.copy(expert + "gate_proj.weight", scope + "gate_proj.weight")
                        .copy(expert + "up_proj.weight", scope + "up_proj.weight")
                        .copy(expert + "down_proj.weight", scope + "down_proj.weight");
                if (shared == SharedExpert.ZERO) java.util.Arrays.fill(repacked.values(scope + "down_proj.weight"), 0f);
            }
        }
        return repacked.write(directory, "DeepseekForCausalLM", config -> {
            config.put("model_type", "deepseek");
            config.put("n_routed_experts", config.get("num_local_experts").asInt());
            config.remove("num_local_experts");
            config.remove("sliding_window");
            config.put("moe_intermediate_size", config.get("intermediate_size").asInt());
            config.put("first_k_dense_replace", 0);
            config.put("moe_layer_freq", 1);
            config.put("norm_topk_prob", renormalize);
            config.put("scoring_func", "softmax");
            if (shared != SharedExpert.NONE) config.put("n_shared_experts", 1);
        });
    }
}
