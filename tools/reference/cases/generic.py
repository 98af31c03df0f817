"""Families jvllm has no class for, which its generic decoder (GenericDecoderForCausalLM) loads from
what their config.json and tensor names show: StableLM (LayerNorm, partial rotary, q/k/v biases)
and StarCoder2 (LayerNorm, a plain GELU MLP with biases, a sliding window)."""

VOCAB = 512

CASES = {
    "stablelm-partial-rotary": ("StableLmConfig", "StableLmForCausalLM", dict(
        vocab_size=VOCAB, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
        layer_norm_eps=1e-5, use_qkv_bias=True, partial_rotary_factor=0.25, tie_word_embeddings=False)),
    "starcoder2-window": ("Starcoder2Config", "Starcoder2ForCausalLM", dict(
        vocab_size=VOCAB, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
        norm_epsilon=1e-5, use_bias=True, hidden_act="gelu_pytorch_tanh", sliding_window=16,
        tie_word_embeddings=False)),
}
