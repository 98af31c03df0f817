"""Golden cases for the pre-Llama families (issue 6, part B): GPT-2, GPT-NeoX, OPT, Phi, Falcon,
GPT-J, BLOOM and MPT, each with a case per difference the Java classes must honour. Tiny shapes:
hidden <= 64, 2 layers, vocabulary 512; make_goldens.py adds bos 1, eos 2, pad 0."""

VOCAB = 512
COMMON = dict(vocab_size=VOCAB, max_position_embeddings=256)

CASES = {
    # GPT-2: learned positions, Conv1D weights, gelu_new, tied head.
    "gpt2-plain": ("GPT2Config", "GPT2LMHeadModel", dict(
        vocab_size=VOCAB, n_positions=256, n_embd=64, n_layer=2, n_head=4,
        activation_function="gelu_new", layer_norm_epsilon=1e-5)),
    # Explicit n_inner, exact GELU and scores divided by the layer number as well.
    "gpt2-layer-scaled": ("GPT2Config", "GPT2LMHeadModel", dict(
        vocab_size=VOCAB, n_positions=256, n_embd=48, n_layer=2, n_head=4, n_inner=80,
        activation_function="gelu", scale_attn_by_inverse_layer_idx=True)),
    # GPT-NeoX: per-head fused qkv, quarter-head rotary, parallel residual.
    "gpt-neox-parallel": ("GPTNeoXConfig", "GPTNeoXForCausalLM", dict(
        COMMON, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
        rotary_pct=0.25, use_parallel_residual=True, hidden_act="gelu", tie_word_embeddings=False)),
    "gpt-neox-sequential": ("GPTNeoXConfig", "GPTNeoXForCausalLM", dict(
        COMMON, hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=8,
        rotary_pct=0.5, rotary_emb_base=5000, use_parallel_residual=False, attention_bias=False,
        hidden_act="gelu_new", tie_word_embeddings=False)),
    # OPT: positions offset by 2, ReLU; 350m-style post-norm with projected embeddings.
    "opt-pre-norm": ("OPTConfig", "OPTForCausalLM", dict(
        COMMON, hidden_size=64, ffn_dim=128, num_hidden_layers=2, num_attention_heads=4,
        do_layer_norm_before=True, activation_function="relu")),
    "opt-post-norm-projected": ("OPTConfig", "OPTForCausalLM", dict(
        COMMON, hidden_size=64, ffn_dim=128, num_hidden_layers=2, num_attention_heads=4,
        do_layer_norm_before=False, word_embed_proj_dim=32, activation_function="relu")),
    # Phi: parallel attention/MLP on one LayerNorm, half-head rotary, biased LM head.
    "phi-partial-rotary": ("PhiConfig", "PhiForCausalLM", dict(
        COMMON, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
        partial_rotary_factor=0.5, hidden_act="gelu_new", tie_word_embeddings=False)),
    "phi-gqa": ("PhiConfig", "PhiForCausalLM", dict(
        COMMON, hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=8,
        num_key_value_heads=2, partial_rotary_factor=0.75, hidden_act="gelu_new", tie_word_embeddings=False)),
    # Falcon: old decoder multi-query parallel; old decoder per-head qkv sequential with biases;
    # new decoder grouped qkv with two norms; ALiBi.
    "falcon-multi-query": ("FalconConfig", "FalconForCausalLM", dict(
        COMMON, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
        new_decoder_architecture=False, multi_query=True, parallel_attn=True, bias=False, alibi=False)),
    "falcon-sequential-bias": ("FalconConfig", "FalconForCausalLM", dict(
        COMMON, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
        new_decoder_architecture=False, multi_query=False, parallel_attn=False, bias=True, alibi=False)),
    "falcon-new-decoder": ("FalconConfig", "FalconForCausalLM", dict(
        COMMON, hidden_size=64, num_hidden_layers=2, num_attention_heads=8, num_kv_heads=2,
        new_decoder_architecture=True, bias=False, alibi=False, ffn_hidden_size=96)),
    "falcon-alibi": ("FalconConfig", "FalconForCausalLM", dict(
        COMMON, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
        new_decoder_architecture=False, multi_query=False, parallel_attn=True, bias=True, alibi=True)),
    # GPT-J: interleaved rotary on rotary_dim, parallel residual, biased LM head.
    "gptj-rotary-dim": ("GPTJConfig", "GPTJForCausalLM", dict(
        vocab_size=VOCAB, n_positions=256, n_embd=64, n_layer=2, n_head=4, rotary_dim=8,
        activation_function="gelu_new", tie_word_embeddings=False)),
    # BLOOM: ALiBi (power-of-two and not), embedding LayerNorm, per-head fused qkv.
    "bloom-plain": ("BloomConfig", "BloomForCausalLM", dict(
        vocab_size=VOCAB, hidden_size=64, n_layer=2, n_head=4)),
    "bloom-six-heads": ("BloomConfig", "BloomForCausalLM", dict(
        vocab_size=VOCAB, hidden_size=48, n_layer=2, n_head=6)),
    # MPT: its own ALiBi slopes (interleaved for six heads), no biases. Transformers builds the
    # slopes with alibi_bias_max 8 whatever attn_config says, so the cases keep that value.
    "mpt-plain": ("MptConfig", "MptForCausalLM", dict(
        vocab_size=VOCAB, d_model=64, n_heads=4, n_layers=2, expansion_ratio=4, max_seq_len=256,
        attn_config=dict(alibi=True, alibi_bias_max=8))),
    "mpt-six-heads": ("MptConfig", "MptForCausalLM", dict(
        vocab_size=VOCAB, d_model=48, n_heads=6, n_layers=2, expansion_ratio=4, max_seq_len=256,
        attn_config=dict(alibi=True, alibi_bias_max=8))),
    # clip_qkv small enough that many of the fused Wqkv outputs are clamped.
    "mpt-clip-qkv": ("MptConfig", "MptForCausalLM", dict(
        vocab_size=VOCAB, d_model=64, n_heads=4, n_layers=2, expansion_ratio=4, max_seq_len=256,
        attn_config=dict(alibi=True, alibi_bias_max=8, clip_qkv=0.05))),
}
