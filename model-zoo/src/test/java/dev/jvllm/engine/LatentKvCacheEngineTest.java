package dev.jvllm.engine;

import dev.jvllm.EngineConfig;
import dev.jvllm.SamplingParams;
import dev.jvllm.config.ModelConfig;
import dev.jvllm.models.layers.RandomCheckpoint;
import dev.jvllm.spi.Backend;
import dev.jvllm.spi.BackendOptions;
import dev.jvllm.spi.Backends;
import dev.jvllm.spi.CausalLM;
import dev.jvllm.spi.KvCacheSpec;
import dev.jvllm.spi.ModelContext;
import dev.jvllm.spi.ModelRegistry;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The engine on a tiny random DeepSeek-V3 (latent attention, a dense then a sparse layer, grouped
 * sigmoid routing with a correction bias, a shared expert): its KV pool is sized by the latent row
 * per token, and batching and preemption leave greedy outputs unchanged.
 */
class LatentKvCacheEngineTest {

    private static final int LAYERS = 2, HIDDEN = 32, HEADS = 4, KV_RANK = 16, NOPE = 8, ROPE = 4, VALUE = 8;
    private static final int EXPERTS = 4, EXPERT_INTERMEDIATE = 16, INTERMEDIATE = 48, VOCAB = 64, BLOCK = 16;
    private static final String CONFIG = """
            {"architectures": ["DeepseekV3ForCausalLM"], "model_type": "deepseek_v3", "vocab_size": 64,
             "hidden_size": 32, "intermediate_size": 48, "moe_intermediate_size": 16, "num_hidden_layers": 2,
             "num_attention_heads": 4, "num_key_value_heads": 4, "kv_lora_rank": 16, "q_lora_rank": null,
             "qk_nope_head_dim": 8, "qk_rope_head_dim": 4, "v_head_dim": 8, "n_routed_experts": 4,
             "num_experts_per_tok": 2, "n_group": 2, "topk_group": 1, "first_k_dense_replace": 1,
             "n_shared_experts": 1, "norm_topk_prob": true, "routed_scaling_factor": 2.5, "rms_norm_eps": 1e-6,
             "max_position_embeddings": 256, "rope_theta": 10000.0}""";

    private Backend backend;
    private RandomCheckpoint checkpoint;
    private ModelConfig config;

    @BeforeEach
    void open() {
        backend = Backends.create("cpu", new BackendOptions(1));
        config = ModelConfig.parse(CONFIG);
        checkpoint = new RandomCheckpoint(42);
        checkpoint.random("model.embed_tokens.weight", 1.0, VOCAB, HIDDEN);
        checkpoint.nearOne("model.norm.weight", HIDDEN);
        checkpoint.random("lm_head.weight", 0.5, VOCAB, HIDDEN);
        for (int layer = 0; layer < LAYERS; layer++) {
            String p = "model.layers." + layer + ".";
            checkpoint.nearOne(p + "input_layernorm.weight", HIDDEN);
            checkpoint.nearOne(p + "post_attention_layernorm.weight", HIDDEN);
            checkpoint.random(p + "self_attn.q_proj.weight", 0.3, HEADS * (NOPE + ROPE), HIDDEN);
            checkpoint.random(p + "self_attn.kv_a_proj_with_mqa.weight", 0.3, KV_RANK + ROPE, HIDDEN);
            checkpoint.nearOne(p + "self_attn.kv_a_layernorm.weight", KV_RANK);
            checkpoint.random(p + "self_attn.kv_b_proj.weight", 0.3, HEADS * (NOPE + VALUE), KV_RANK);
            checkpoint.random(p + "self_attn.o_proj.weight", 0.3, HIDDEN, HEADS * VALUE);
            if (layer == 0) {
                mlp(p + "mlp.", INTERMEDIATE);
            } else {
                checkpoint.random(p + "mlp.gate.weight", 0.5, EXPERTS, HIDDEN);
                checkpoint.random(p + "mlp.gate.e_score_correction_bias", 0.05, EXPERTS);
                for (int e = 0; e < EXPERTS; e++) mlp(p + "mlp.experts." + e + ".", EXPERT_INTERMEDIATE);
                mlp(p + "mlp.shared_experts.", EXPERT_INTERMEDIATE);
            }
        }
    }

    private void mlp(String prefix, int intermediate) {
        checkpoint.random(prefix + "gate_proj.weight", 0.3, intermediate, HIDDEN);
        checkpoint.random(prefix + "up_proj.weight", 0.3, intermediate, HIDDEN);
        checkpoint.random(prefix + "down_proj.weight", 0.3, HIDDEN, intermediate);
    }

    @AfterEach
    void close() {
        checkpoint.close();
        backend.close();
    }

    private LLMEngine engine(int maxModelLen, long kvBytes, int maxBatchedTokens) {
        CausalLM model = ModelRegistry.find(config).load(new ModelContext(config, checkpoint, backend, maxModelLen));
        EngineConfig settings = new EngineConfig(maxModelLen, BLOCK, kvBytes, 256, maxBatchedTokens, false, 0L, "cpu", 1);
        return new LLMEngine(model, backend, null, List.of(2), maxModelLen, settings);
    }

    private static long latentBytesPerToken() {
        return (long) LAYERS * (KV_RANK + ROPE) * Float.BYTES;
    }

    @Test
    void theKvPoolHoldsOneLatentRowPerTokenAndLayer() {
        CausalLM model = ModelRegistry.find(config).load(new ModelContext(config, checkpoint, backend, 64));
        KvCacheSpec spec = model.kvCacheSpec(1, BLOCK);
        assertEquals(KvCacheSpec.Layout.LATENT, spec.layout());
        // 160 bytes a token, where full keys and values of 4 heads of 12 and 8 would take 640.
        assertEquals(latentBytesPerToken(), spec.bytesPerToken(Float.BYTES));
        try (LLMEngine engine = engine(64, 10 * BLOCK * latentBytesPerToken() + 100, 2048)) {
            assertEquals(10, engine.metrics().kvBlocksTotal());
        }
    }

    @Test
    void batchedAndPreemptedRequestsGiveTheTokensEachGivesAlone() {
        SamplingParams greedy = SamplingParams.builder().temperature(0).ignoreEos(true).maxTokens(24).build();
        Random random = new Random(9);
        List<int[]> prompts = new ArrayList<>();
        for (int length : new int[]{20, 45, 33, 7, 38}) prompts.add(random.ints(length, 3, VOCAB).toArray());
        List<List<Integer>> alone = new ArrayList<>();
        for (int[] prompt : prompts) {
            try (LLMEngine engine = engine(96, 1L << 24, 2048)) {
                alone.add(generate(engine, List.of(prompt), greedy).getFirst());
            }
        }
        // Each request grows to 2 to 5 blocks; 7 blocks cannot hold them all at once.
        try (LLMEngine engine = engine(96, 7 * BLOCK * latentBytesPerToken(), 12)) {
            assertEquals(alone, generate(engine, prompts, greedy));
            assertTrue(engine.metrics().preemptions() > 0, "no request was preempted: " + engine.metrics());
            engine.checkNoLeaks();
        }
    }

    private static List<List<Integer>> generate(LLMEngine engine, List<int[]> prompts, SamplingParams params) {
        for (int i = 0; i < prompts.size(); i++) engine.addRequest("r" + i, prompts.get(i), params);
        Map<String, List<Integer>> done = EngineRuns.finishedTokens(engine);
        List<List<Integer>> outputs = new ArrayList<>();
        for (int i = 0; i < prompts.size(); i++) outputs.add(done.get("r" + i));
        return outputs;
    }
}
