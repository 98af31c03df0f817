"""Gemma 3 (text): Gemma 2's sandwich norms with (1 + w) q/k norms on every head, sliding-window
layers whose rotary base is rope_local_base_freq beside global layers with rope_theta and its
scaling, no soft-capping. model-zoo's Gemma3GoldenTest reads the case names from this file."""

VOCAB = 512

CASES = {
    "gemma3-local-global": ("Gemma3TextConfig", "Gemma3ForCausalLM", dict(
        vocab_size=VOCAB, hidden_size=64, intermediate_size=128, num_hidden_layers=3, num_attention_heads=4,
        num_key_value_heads=2, head_dim=16, max_position_embeddings=256, rms_norm_eps=1e-6, query_pre_attn_scalar=32,
        sliding_window=8, layer_types=["sliding_attention", "full_attention", "sliding_attention"],
        rope_theta=1_000_000.0, rope_local_base_freq=10_000.0, rope_scaling=dict(rope_type="linear", factor=8.0),
        hidden_activation="gelu_pytorch_tanh", tie_word_embeddings=True)),
}
