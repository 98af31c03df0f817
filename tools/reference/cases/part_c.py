"""Golden cases for the families whose Hub code Transformers 5.17 does not ship (issue 6, part C):
Baichuan / Baichuan 2, InternLM, InternLM2 and ChatGLM2/3.

Each reference is a native Transformers model with the same math: LlamaForCausalLM for Baichuan
and InternLM/InternLM2, GlmForCausalLM (GLM-4: half-head interleaved rotary, qkv bias, fused
gate/up) for ChatGLM. Its repack(model, out_dir) rewrites the saved model.safetensors and
config.json into the family's own names, packing and config fields; make_goldens.py then computes
the logits from the native model. Baichuan with ALiBi (the 13B models) has no native equivalent
(no Transformers model pairs ALiBi with RMSNorm and SwiGLU), so it has no case here.

Each case is name -> (config class name, model class name, config kwargs, repack); make_goldens
adds bos_token_id=1, eos_token_id=2, pad_token_id=0. model-zoo's RepackedFamiliesGoldenTest reads
the case names from this file.
"""
import json
import os

import torch
from safetensors.torch import load_file, save_file

VOCAB = 512


def tiny(**overrides):
    """2 layers, hidden 64, 4 heads; Llama and GLM take the same field names."""
    kwargs = dict(vocab_size=VOCAB, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                  num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=256,
                  rms_norm_eps=1e-6, rope_parameters=dict(rope_type="default", rope_theta=10000.0),
                  tie_word_embeddings=False)
    kwargs.update(overrides)
    return kwargs


def rewrite(out_dir, tensors, config):
    """Replaces the checkpoint's tensors and its config.json."""
    save_file({k: v.contiguous() for k, v in tensors.items()}, os.path.join(out_dir, "model.safetensors"),
              metadata={"format": "pt"})
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(config, f, indent=2, sort_keys=True)


def saved(out_dir):
    tensors = load_file(os.path.join(out_dir, "model.safetensors"))
    with open(os.path.join(out_dir, "config.json")) as f:
        return tensors, json.load(f)


def rename(tensors, table):
    """Each tensor renamed by the first (old, new) substring pair of table that matches it."""
    out = {}
    for name, value in tensors.items():
        for old, new in table:
            if old in name:
                name = name.replace(old, new)
                break
        out[name] = value
    return out


def pack_qkv(tensors, q_name, fused_name, kv_heads=None, head_dim=None):
    """q, k and v of every layer (weights and biases) joined into fused_name: [q; k; v], or with
    kv_heads, grouped per key/value head as [kv_heads, queries per kv head + 2, head_dim] rows."""
    out = {}
    for name, q in tensors.items():
        if q_name not in name:
            if not any(p in name for p in (q_name.replace("q_", "k_"), q_name.replace("q_", "v_"))):
                out[name] = q
            continue
        k = tensors[name.replace(q_name, q_name.replace("q_", "k_"))]
        v = tensors[name.replace(q_name, q_name.replace("q_", "v_"))]
        if kv_heads is None:
            packed = torch.cat([q, k, v])
        else:
            rest = q.shape[1:]
            packed = torch.cat([q.reshape(kv_heads, -1, head_dim, *rest), k.reshape(kv_heads, 1, head_dim, *rest),
                                v.reshape(kv_heads, 1, head_dim, *rest)], dim=1).reshape(-1, *rest)
        out[name.replace(q_name, fused_name)] = packed
    return out


def without(config, *fields):
    return {k: v for k, v in config.items() if k not in fields}


def baichuan(architecture, norm_head=False):
    """Llama (multi-head, no biases) as Baichuan: q, k, v packed in W_pack, no rope fields (theta
    10000). With norm_head, Baichuan 2's NormHead: the reference model's LM head rows are made unit
    length, and the checkpoint stores them at arbitrary lengths for the loader to normalize."""
    def repack(model, out_dir):
        tensors, config = saved(out_dir)
        tensors = pack_qkv(tensors, "self_attn.q_proj", "self_attn.W_pack")
        config = without(config, "attention_bias", "mlp_bias", "head_dim", "num_key_value_heads",
                         "rope_parameters", "rope_theta", "rope_scaling")
        config.update(architectures=[architecture], model_type="baichuan")
        if norm_head:
            unit = torch.nn.functional.normalize(model.lm_head.weight, dim=-1)
            model.lm_head.weight.copy_(unit)
            lengths = 0.25 + 2 * torch.rand(unit.shape[0], 1, generator=torch.Generator().manual_seed(0))
            tensors["lm_head.weight"] = unit * lengths
            config["norm_head"] = True
        rewrite(out_dir, tensors, config)
    return repack


def internlm(model, out_dir):
    """Llama with q/k/v/o biases as InternLM: the same names, `bias` instead of attention_bias."""
    tensors, config = saved(out_dir)
    config = without(config, "attention_bias", "mlp_bias")
    config.update(architectures=["InternLMForCausalLM"], model_type="internlm", bias=True)
    rewrite(out_dir, tensors, config)


def internlm2(model, out_dir):
    """Llama as InternLM2: its names, q/k/v grouped per key/value head in wqkv, rope_theta on top."""
    tensors, config = saved(out_dir)
    heads, kv_heads = config["num_attention_heads"], config["num_key_value_heads"]
    tensors = pack_qkv(tensors, "self_attn.q_proj", "attention.wqkv", kv_heads, config["hidden_size"] // heads)
    tensors = rename(tensors, [
        ("model.embed_tokens.", "model.tok_embeddings."), ("self_attn.o_proj.", "attention.wo."),
        ("mlp.gate_proj.", "feed_forward.w1."), ("mlp.up_proj.", "feed_forward.w3."),
        ("mlp.down_proj.", "feed_forward.w2."), ("input_layernorm.", "attention_norm."),
        ("post_attention_layernorm.", "ffn_norm."), ("lm_head.", "output.")])
    theta = config["rope_parameters"]["rope_theta"]
    bias = config["attention_bias"]
    config = without(config, "attention_bias", "mlp_bias", "head_dim", "rope_parameters")
    config.update(architectures=["InternLM2ForCausalLM"], model_type="internlm2", bias=bias, rope_theta=theta,
                  rope_scaling=None)
    rewrite(out_dir, tensors, config)


def chatglm(architecture):
    """GLM-4 (Transformers' GlmForCausalLM) as ChatGLM2/3: Megatron-style names, [q; k; v] with
    biases in query_key_value, [gate; up] in dense_h_to_4h, and ChatGLMConfig's own fields only."""
    def repack(model, out_dir):
        tensors, config = saved(out_dir)
        heads, kv_heads, head_dim = config["num_attention_heads"], config["num_key_value_heads"], config["head_dim"]
        rope = config.get("rope_parameters") or {}
        # ChatGLM rotates half of each head (adjacent pairs, as GLM does); check the half and the plain base.
        assert rope.get("partial_rotary_factor", config.get("partial_rotary_factor")) == 0.5, rope
        assert rope.get("rope_type", "default") == "default", rope
        rotary = getattr(getattr(model, "model", None), "rotary_emb", None)
        if rotary is not None:
            assert rotary.inv_freq.numel() == head_dim // 4, rotary.inv_freq.shape
        # ChatGLM has no output or MLP biases (add_bias_linear false); neither may the reference.
        extra = [n for n in tensors if n.endswith("o_proj.bias") or (".mlp." in n and n.endswith(".bias"))]
        assert not extra, extra
        tensors = pack_qkv(tensors, "self_attn.q_proj", "self_attention.query_key_value")
        tensors = rename(tensors, [
            ("model.embed_tokens.", "transformer.embedding.word_embeddings."),
            ("model.layers.", "transformer.encoder.layers."), ("model.norm.", "transformer.encoder.final_layernorm."),
            ("lm_head.", "transformer.output_layer.")])
        tensors = rename(tensors, [
            ("self_attn.o_proj.", "self_attention.dense."), ("mlp.gate_up_proj.", "mlp.dense_h_to_4h."),
            ("mlp.down_proj.", "mlp.dense_4h_to_h.")])
        rewrite(out_dir, tensors, {
            "architectures": [architecture], "model_type": "chatglm", "torch_dtype": "float32",
            "num_layers": config["num_hidden_layers"], "padded_vocab_size": config["vocab_size"],
            "hidden_size": config["hidden_size"], "ffn_hidden_size": config["intermediate_size"],
            "kv_channels": head_dim, "num_attention_heads": heads,
            "multi_query_attention": kv_heads != heads, "multi_query_group_num": kv_heads,
            "layernorm_epsilon": config["rms_norm_eps"], "rmsnorm": True,
            "apply_residual_connection_post_layernorm": False, "post_layer_norm": True,
            "add_bias_linear": False, "add_qkv_bias": True, "original_rope": True,
            "rope_ratio": rope["rope_theta"] / 10000, "seq_length": config["max_position_embeddings"],
            "tie_word_embeddings": False, "bos_token_id": config["bos_token_id"],
            "eos_token_id": config["eos_token_id"], "pad_token_id": config["pad_token_id"]})
    return repack


CASES = {
    # Baichuan-7B: W_pack, rotary ("BaiChuanForCausalLM" is rotary at any size).
    "baichuan-rotary": ("LlamaConfig", "LlamaForCausalLM", tiny(), baichuan("BaiChuanForCausalLM")),
    # Baichuan 2's NormHead, asked for by norm_head (a tiny vocabulary is not Baichuan 2's 125696).
    "baichuan2-norm-head": ("LlamaConfig", "LlamaForCausalLM", tiny(
        hidden_size=48, intermediate_size=96, rms_norm_eps=1e-5), baichuan("BaiChuanForCausalLM", norm_head=True)),
    # InternLM: biases on q, k, v and o from `bias`.
    "internlm-bias": ("LlamaConfig", "LlamaForCausalLM", tiny(attention_bias=True, mlp_bias=False), internlm),
    # InternLM2: wqkv grouped per key/value head (8 query heads over 2), its own names.
    "internlm2-gqa": ("LlamaConfig", "LlamaForCausalLM", tiny(
        intermediate_size=96, num_attention_heads=8, num_key_value_heads=2, rms_norm_eps=1e-5,
        rope_parameters=dict(rope_type="default", rope_theta=1000000.0)), internlm2),
    # InternLM2 with `bias`: the wqkv bias is regrouped like its rows.
    "internlm2-bias": ("LlamaConfig", "LlamaForCausalLM", tiny(
        num_key_value_heads=2, attention_bias=True, mlp_bias=False), internlm2),
    # ChatGLM2/3: 2 key/value groups (multi_query_attention), half-head interleaved rotary, qkv bias.
    "chatglm-multi-query": ("GlmConfig", "GlmForCausalLM", tiny(
        num_key_value_heads=2, head_dim=16, attention_bias=True, rms_norm_eps=1e-5,
        rope_parameters=dict(rope_type="default", rope_theta=10000.0, partial_rotary_factor=0.5)),
        chatglm("ChatGLMModel")),
    # rope_ratio 50 (ChatGLM3-32k style), every head its own key/value, kv_channels 24 != 64 / 4.
    "chatglm-rope-ratio": ("GlmConfig", "GlmForCausalLM", tiny(
        intermediate_size=96, head_dim=24, attention_bias=True,
        rope_parameters=dict(rope_type="default", rope_theta=500000.0, partial_rotary_factor=0.5)),
        chatglm("ChatGLMForConditionalGeneration")),
}
