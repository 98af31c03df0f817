"""Golden cases for issue 7: mixtures of experts (Mixtral, Qwen2-MoE, Qwen3-MoE, DeepSeek-V2/V3) and
DeepSeek's multi-head latent attention.

Each case is name -> (config class name, model class name, config kwargs), as in make_goldens.py;
make_goldens adds bos_token_id=1, eos_token_id=2, pad_token_id=0, perturbs every parameter by
N(0, 0.02) and DeepSeek-V3's e_score_correction_bias buffers by N(0, 0.05) (so that the bias decides
some choices; the sigmoid scores stay near 0.5, so every biased score stays positive). Every kwarg
is a field of the Transformers 5.17 config class. Tiny shapes: hidden 64, 2 layers, 4 to 8 experts.
model-zoo's MoeGoldenTest reads the case names from this file.
"""

import importlib.util
import pathlib

# The common tiny shape (2 layers, hidden 64, 4 query heads over 2 key/value heads) is part_a's.
_part_a_spec = importlib.util.spec_from_file_location("part_a", pathlib.Path(__file__).with_name("part_a.py"))
_part_a = importlib.util.module_from_spec(_part_a_spec)
_part_a_spec.loader.exec_module(_part_a)
tiny = _part_a.tiny


def deepseek(**overrides):
    """DeepSeek's tiny shape: layer 0 dense, layer 1 sparse; latent rank 32, heads of 16 + 8 rotary."""
    kwargs = tiny(num_key_value_heads=4, moe_intermediate_size=32, first_k_dense_replace=1,
                  kv_lora_rank=32, q_lora_rank=None, qk_nope_head_dim=16, qk_rope_head_dim=8, v_head_dim=16,
                  n_routed_experts=8, num_experts_per_tok=2)
    kwargs.update(overrides)
    return kwargs


CASES = {
    # Mixtral: 4 experts, top-1 (the renormalized weight is 1), no window.
    "mixtral-top1": ("MixtralConfig", "MixtralForCausalLM", tiny(
        intermediate_size=96, num_local_experts=4, num_experts_per_tok=1, sliding_window=None)),
    # Mixtral: 8 experts, top-2 renormalized, a 16-token window on every layer.
    "mixtral-top2": ("MixtralConfig", "MixtralForCausalLM", tiny(
        intermediate_size=64, num_local_experts=8, num_experts_per_tok=2, sliding_window=16)),
    # Qwen2-MoE: q/k/v biases, top-2 of 8 not renormalized, a sigmoid-gated shared expert on every layer.
    "qwen2-moe-shared": ("Qwen2MoeConfig", "Qwen2MoeForCausalLM", tiny(
        moe_intermediate_size=32, shared_expert_intermediate_size=48, num_experts=8, num_experts_per_tok=2,
        norm_topk_prob=False, decoder_sparse_step=1, qkv_bias=True)),
    # Qwen2-MoE without a shared expert (size 0: it adds nothing), renormalized top-2, and
    # decoder_sparse_step 2: layer 0 is a dense MLP of intermediate_size, layer 1 sparse.
    "qwen2-moe-no-shared": ("Qwen2MoeConfig", "Qwen2MoeForCausalLM", tiny(
        moe_intermediate_size=32, shared_expert_intermediate_size=0, num_experts=4, num_experts_per_tok=2,
        norm_topk_prob=True, decoder_sparse_step=2)),
    # Qwen3-MoE: QK-norm, head_dim 32, renormalized top-2 of 8, layer 0 dense through mlp_only_layers.
    "qwen3-moe": ("Qwen3MoeConfig", "Qwen3MoeForCausalLM", tiny(
        head_dim=32, moe_intermediate_size=32, num_experts=8, num_experts_per_tok=2, norm_topk_prob=True,
        decoder_sparse_step=1, mlp_only_layers=[0])),
    # DeepSeek-V2: queries straight from x (q_lora_rank null), group-limited greedy routing (2 of 4
    # groups of 2, a group scored by its best expert), routed weights x 1.5, two shared experts.
    "deepseek-v2-grouped": ("DeepseekV2Config", "DeepseekV2ForCausalLM", deepseek(
        topk_method="group_limited_greedy", n_group=4, topk_group=2, routed_scaling_factor=1.5,
        norm_topk_prob=False, n_shared_experts=2)),
    # DeepSeek-V2 with low-rank queries (q_lora_rank 24), greedy top-2 of 4, one shared expert.
    "deepseek-v2-q-lora": ("DeepseekV2Config", "DeepseekV2ForCausalLM", deepseek(
        q_lora_rank=24, n_routed_experts=4, topk_method="greedy", routed_scaling_factor=1.0,
        norm_topk_prob=False, n_shared_experts=1)),
    # DeepSeek-V3: sigmoid scores with the (perturbed) correction bias, 2 of 4 groups ranked by their
    # two best, renormalized then x 2.5, low-rank queries, interleaved rotary, and YaRN trained at 64
    # positions (factor 4 = 256 / 64) with mscale 1 / mscale_all_dim 0.8: cos and sin scaled by
    # mscale(4, 1) / mscale(4, 0.8), the softmax scale by mscale(4, 0.8)^2.
    "deepseek-v3-noaux": ("DeepseekV3Config", "DeepseekV3ForCausalLM", deepseek(
        q_lora_rank=24, n_group=4, topk_group=2, norm_topk_prob=True, routed_scaling_factor=2.5,
        n_shared_experts=1, rope_interleave=True,
        rope_parameters=dict(rope_type="yarn", rope_theta=10000.0, factor=4.0, original_max_position_embeddings=64,
                             beta_fast=32.0, beta_slow=1.0, mscale=1.0, mscale_all_dim=0.8))),
    # DeepSeek-V3 without groups (1 group), weights not renormalized, non-interleaved rotary, plain RoPE.
    "deepseek-v3-ungrouped": ("DeepseekV3Config", "DeepseekV3ForCausalLM", deepseek(
        n_routed_experts=4, n_group=1, topk_group=1, norm_topk_prob=False, routed_scaling_factor=2.0,
        n_shared_experts=1, rope_interleave=False)),
}


def _deepseek_v2_sets_num_experts():
    """Some Transformers 5 releases read DeepseekV2Moe.num_experts in group_limited_greedy routing
    without ever setting it (an AttributeError); set it to n_routed_experts, the value it stands
    for, where it is missing. A no-op where Transformers sets it itself."""
    try:
        from transformers.models.deepseek_v2 import modeling_deepseek_v2 as modeling
    except ImportError:
        return
    original = modeling.DeepseekV2Moe.__init__

    def init(self, config):
        original(self, config)
        if not hasattr(self, "num_experts"):
            self.num_experts = config.n_routed_experts

    modeling.DeepseekV2Moe.__init__ = init


_deepseek_v2_sets_num_experts()
