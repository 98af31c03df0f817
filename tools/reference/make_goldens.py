"""Reference pipeline: tiny random-weight checkpoints built from configs with Hugging Face
Transformers, and HF's own float32 outputs on fixed prompts, for the Java tests to match.

Run on the GPU machine (Transformers 5.17, no network):
    python3 tools/reference/make_goldens.py --out OUTDIR [--only NAME ...]
Cases: CASES below (Llama) and every tools/reference/cases/*.py module's CASES dict, same shape:
name -> (config class name, model class name, config kwargs[, repack]) where the optional
repack(model, out_dir) rewrites a saved native checkpoint into a family's own layout (for
families whose Hub code Transformers does not ship: Baichuan, InternLM, ChatGLM).
Each case becomes OUTDIR/<name>/ with config.json, generation_config.json, model.safetensors
(weights rounded to bfloat16 values and stored as BF16, to keep the repository small; the
reference runs in float32 on exactly those values, config.json says float32), logits.safetensors (tensor "prompt<i>" = logits at every prompt position, [len, vocab])
and goldens.json (prompts, 16 greedy tokens each, library versions).
"""
import argparse
import json
import os
import zlib

import torch
import transformers
from safetensors.torch import load_file, save_file

GREEDY_TOKENS = 16
VOCAB = 512

# (name, config class name, model class name, config kwargs)
CASES = {
    "llama-plain": ("LlamaConfig", "LlamaForCausalLM", dict(
        vocab_size=VOCAB, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=256,
        rms_norm_eps=1e-6, rope_theta=10000.0, tie_word_embeddings=False)),
    "llama-gqa": ("LlamaConfig", "LlamaForCausalLM", dict(
        vocab_size=VOCAB, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
        num_attention_heads=8, num_key_value_heads=2, max_position_embeddings=256,
        rms_norm_eps=1e-5, rope_theta=500000.0, tie_word_embeddings=False)),
    "llama-tied": ("LlamaConfig", "LlamaForCausalLM", dict(
        vocab_size=VOCAB, hidden_size=48, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
        rms_norm_eps=1e-6, tie_word_embeddings=True)),
    "llama3-rope": ("LlamaConfig", "LlamaForCausalLM", dict(
        vocab_size=VOCAB, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
        rms_norm_eps=1e-5, tie_word_embeddings=True,
        rope_scaling=dict(rope_type="llama3", factor=8.0, low_freq_factor=1.0,
                          high_freq_factor=4.0, original_max_position_embeddings=64),
        rope_theta=500000.0)),
    "llama-linear-rope": ("LlamaConfig", "LlamaForCausalLM", dict(
        vocab_size=VOCAB, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
        rms_norm_eps=1e-6, rope_scaling=dict(rope_type="linear", factor=4.0))),
    "llama-yarn-rope": ("LlamaConfig", "LlamaForCausalLM", dict(
        vocab_size=VOCAB, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
        rms_norm_eps=1e-6, rope_theta=10000.0,
        rope_scaling=dict(rope_type="yarn", factor=4.0, original_max_position_embeddings=64))),
    "llama-bias": ("LlamaConfig", "LlamaForCausalLM", dict(
        vocab_size=VOCAB, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
        rms_norm_eps=1e-6, attention_bias=True, mlp_bias=True)),
}


def prompts(seed):
    g = torch.Generator().manual_seed(seed)
    lengths = [1, 7, 45]
    return [torch.randint(3, VOCAB, (n,), generator=g).tolist() for n in lengths]


def all_cases():
    import importlib.util
    import pathlib
    cases = dict(CASES)
    for path in sorted(pathlib.Path(__file__).with_name("cases").glob("*.py")):
        spec = importlib.util.spec_from_file_location(path.stem, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        cases.update(module.CASES)
    return cases


@torch.no_grad()
def run_case(name, out_root, cases):
    cfg_cls, model_cls, kwargs, *repack = cases[name]
    torch.manual_seed(zlib.crc32(name.encode()))
    config = getattr(transformers, cfg_cls)(bos_token_id=1, eos_token_id=2, pad_token_id=0, **kwargs)
    model = getattr(transformers, model_cls)(config).to(torch.float32).eval()
    # Random init leaves some weights (norms) at exactly 1 / 0: perturb every parameter so each
    # one influences the result and a loader that skips it fails the comparison.
    for p in model.parameters():
        p.add_(torch.randn_like(p) * 0.02)
    # DeepSeek-V3's expert-choice bias is a buffer, zero at init: perturb it too, so that it decides.
    for buffer_name, buffer in model.named_buffers():
        if buffer_name.endswith("e_score_correction_bias"):
            buffer.add_(torch.randn_like(buffer) * 0.05)
    # Weights hold bfloat16 values (stored as BF16 below, half the bytes); the reference still runs
    # in float32 on exactly those values.
    for p in model.parameters():
        p.copy_(p.to(torch.bfloat16).to(torch.float32))
    for buffer_name, buffer in model.named_buffers():
        if buffer_name.endswith("e_score_correction_bias"):
            buffer.copy_(buffer.to(torch.bfloat16).to(torch.float32))
    out = os.path.join(out_root, name)
    model.save_pretrained(out)
    if repack:
        repack[0](model, out)
    store_as_bf16(out)
    tensors, records = {}, []
    for i, ids in enumerate(prompts(zlib.crc32(name.encode()) % 1000)):
        x = torch.tensor([ids])
        logits = model(x).logits[0].float()
        tensors[f"prompt{i}"] = logits.contiguous()
        seq, greedy = list(ids), []
        for _ in range(GREEDY_TOKENS):
            nxt = int(model(torch.tensor([seq])).logits[0, -1].argmax())
            greedy.append(nxt)
            seq.append(nxt)
        records.append({"prompt_token_ids": ids, "greedy_token_ids": greedy})
    save_file(tensors, os.path.join(out, "logits.safetensors"))
    with open(os.path.join(out, "goldens.json"), "w") as f:
        json.dump({"case": name, "architecture": model_cls, "repacked": bool(repack), "transformers": transformers.__version__,
                   "torch": torch.__version__, "prompts": records}, f, indent=1)
    print(f"{name}: {sum(p.numel() for p in model.parameters())} params, "
          f"prompt lengths {[len(r['prompt_token_ids']) for r in records]}")


def store_as_bf16(directory):
    """Rewrites every float32 tensor of the checkpoint whose values bfloat16 holds exactly as BF16."""
    for file in sorted(os.listdir(directory)):
        if not (file.startswith("model") and file.endswith(".safetensors")):
            continue
        path = os.path.join(directory, file)
        tensors = load_file(path)
        for key, t in tensors.items():
            if t.dtype == torch.float32 and torch.equal(t.to(torch.bfloat16).to(torch.float32), t):
                tensors[key] = t.to(torch.bfloat16)
        save_file(tensors, path, metadata={"format": "pt"})


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--only", nargs="*")
    args = ap.parse_args()
    torch.use_deterministic_algorithms(True)
    cases = all_cases()
    for name in args.only or cases:
        run_case(name, args.out, cases)


if __name__ == "__main__":
    main()
