package dev.jvllm.models;

/**
 * Mixtral, Qwen2-MoE, Qwen3-MoE, DeepSeek-V2 and DeepSeek-V3 against Transformers' float32 outputs:
 * every case of tools/reference/cases/moe.py (top-1 and top-2 routing, grouped and biased routing,
 * shared experts on and off, latent attention with and without low-rank queries, YaRN with mscale).
 */
class MoeGoldenTest extends GoldenCaseFileTest {

    MoeGoldenTest() {
        super("moe.py");
    }
}
