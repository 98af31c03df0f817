"""Golden cases for the Llama-shaped families of issue 6, part A: Qwen2/2.5, Qwen3, Mistral, Gemma,
Gemma 2, Phi-3, and Yi / DeepSeek-LLM (which ship as plain LlamaForCausalLM).

Each case is name -> (config class name, model class name, config kwargs), as in make_goldens.py;
make_goldens adds bos_token_id=1, eos_token_id=2, pad_token_id=0. Every kwarg is a field of the
Transformers 5.17 config class. Windows are 16 tokens so that the 45-token prompt slides.
model-zoo's DecoderFamiliesGoldenTest reads the case names from this file.
"""

VOCAB = 512
ROPE = dict(rope_type="default", rope_theta=10000.0)


def tiny(**overrides):
    """The common tiny shape: 2 layers, hidden 64, 4 query heads over 2 key/value heads."""
    kwargs = dict(vocab_size=VOCAB, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                  num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                  rms_norm_eps=1e-6, rope_parameters=dict(ROPE), tie_word_embeddings=False)
    kwargs.update(overrides)
    return kwargs


CASES = {
    # Qwen2: q/k/v biases (no o bias); tied embeddings as on the small checkpoints.
    "qwen2-tied": ("Qwen2Config", "Qwen2ForCausalLM", tiny(
        tie_word_embeddings=True, rope_parameters=dict(rope_type="default", rope_theta=1000000.0))),
    # Qwen2 sliding window: layer 0 global, layer 1 sliding (max_window_layers=1).
    "qwen2-sliding": ("Qwen2Config", "Qwen2ForCausalLM", tiny(
        use_sliding_window=True, sliding_window=16, max_window_layers=1)),
    # Qwen3: per-head q/k RMSNorm, explicit head_dim (4 heads x 32 = 128 != hidden 64), tied.
    "qwen3-qk-norm": ("Qwen3Config", "Qwen3ForCausalLM", tiny(
        head_dim=32, tie_word_embeddings=True, rope_parameters=dict(rope_type="default", rope_theta=1000000.0))),
    # Qwen3 with attention_bias (q, k, v and o) and explicit layer_types: layer 0 slides, layer 1 is global.
    "qwen3-bias-layer-types": ("Qwen3Config", "Qwen3ForCausalLM", tiny(
        head_dim=16, attention_bias=True, use_sliding_window=True, sliding_window=16,
        layer_types=["sliding_attention", "full_attention"])),
    # Mistral: every layer slides.
    "mistral-sliding": ("MistralConfig", "MistralForCausalLM", tiny(sliding_window=16)),
    # Mistral v0.2 style: no window (null), explicit head_dim (4 x 24 = 96 != hidden 64).
    "mistral-no-window": ("MistralConfig", "MistralForCausalLM", tiny(sliding_window=None, head_dim=24)),
    # Gemma: (1 + w) RMSNorm, GeGLU with tanh GELU, embeddings x sqrt(hidden), multi-query, tied.
    "gemma-plain": ("GemmaConfig", "GemmaForCausalLM", tiny(
        head_dim=16, num_key_value_heads=1, hidden_act="gelu_pytorch_tanh",
        hidden_activation="gelu_pytorch_tanh", tie_word_embeddings=True)),
    # Gemma with hidden 48 (sqrt(48) is not a round number) and head_dim 32 (4 x 32 = 128 != 48).
    "gemma-head-dim": ("GemmaConfig", "GemmaForCausalLM", tiny(
        hidden_size=48, intermediate_size=96, head_dim=32, hidden_act="gelu_pytorch_tanh",
        hidden_activation="gelu_pytorch_tanh", tie_word_embeddings=True)),
    # Gemma 2: pre+post norms, query_pre_attn_scalar != head_dim, attention and final softcaps small
    # enough to bend these tiny logits, layer 0 sliding / layer 1 global. Eager attention: SDPA in
    # Transformers silently drops attn_logit_softcapping.
    "gemma2-softcap": ("Gemma2Config", "Gemma2ForCausalLM", tiny(
        hidden_size=48, intermediate_size=96, head_dim=16, hidden_activation="gelu_pytorch_tanh",
        query_pre_attn_scalar=24, attn_logit_softcapping=0.02, final_logit_softcapping=0.3,
        sliding_window=16, tie_word_embeddings=True, attn_implementation="eager")),
    # Gemma 2 with explicit layer_types (layer 0 global, layer 1 sliding) and both softcaps off.
    "gemma2-layer-types": ("Gemma2Config", "Gemma2ForCausalLM", tiny(
        head_dim=16, hidden_activation="gelu_pytorch_tanh", query_pre_attn_scalar=16,
        attn_logit_softcapping=None, final_logit_softcapping=None, sliding_window=16,
        layer_types=["full_attention", "sliding_attention"], tie_word_embeddings=True,
        attn_implementation="eager")),
    # Phi-3: fused qkv_proj and gate_up_proj, a sliding window on every layer.
    "phi3-fused": ("Phi3Config", "Phi3ForCausalLM", tiny(sliding_window=16)),
    # Phi-3 LongRoPE: trained at 32 positions, extended to 256 (attention factor
    # sqrt(1 + ln 8 / ln 32)); the 45-token prompt runs on the long factors, the others on the short.
    "phi3-longrope": ("Phi3Config", "Phi3ForCausalLM", tiny(
        original_max_position_embeddings=32,
        rope_parameters=dict(rope_type="longrope", rope_theta=10000.0,
                             short_factor=[1.0, 1.02, 1.05, 1.1, 1.2, 1.3, 1.5, 1.8],
                             long_factor=[1.0, 1.5, 2.0, 3.0, 4.5, 6.0, 8.0, 12.0]))),
    # Yi and DeepSeek-LLM checkpoints are LlamaForCausalLM: their shapes, through the Llama class.
    "yi-llama": ("LlamaConfig", "LlamaForCausalLM", tiny(
        num_attention_heads=8, num_key_value_heads=2, rms_norm_eps=1e-5,
        rope_parameters=dict(rope_type="default", rope_theta=5000000.0))),
    "deepseek-llm-llama": ("LlamaConfig", "LlamaForCausalLM", tiny(num_key_value_heads=4)),
}
