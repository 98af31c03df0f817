"""Embedding goldens: tiny random BERT, XLM-RoBERTa and Mistral-as-embedder checkpoints with
Hugging Face Transformers' own float32 last hidden states and pooled, normalized vectors.

Run on the GPU machine (Transformers 5.17, no network), from the repository root:
    python3 tools/reference/make_embedding_goldens.py \
        --out model-zoo/src/test/resources/embedding-goldens [--only NAME ...]
Each case becomes OUT/<name>/ with config.json, model.safetensors (float32, saved by the
headless *Model class, so weights have no "bert."/"model." prefix), hidden.safetensors
(tensor "input<i>" = last_hidden_state [len, hidden]) and goldens.json (inputs, pooling,
pooled normalized vectors, library versions). Pooling: CLS for BERT and XLM-R, LAST for Mistral.
"""
import argparse
import json
import os
import zlib

import torch
import transformers
from safetensors.torch import save_file

VOCAB = 512

CASES = {
    "bert-tiny": ("BertConfig", "BertModel", "CLS", dict(
        vocab_size=VOCAB, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, max_position_embeddings=128, type_vocab_size=2,
        hidden_act="gelu", layer_norm_eps=1e-12, pad_token_id=0)),
    "xlm-roberta-tiny": ("XLMRobertaConfig", "XLMRobertaModel", "CLS", dict(
        vocab_size=VOCAB, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, max_position_embeddings=130, type_vocab_size=1,
        hidden_act="gelu", layer_norm_eps=1e-5, pad_token_id=1, bos_token_id=0, eos_token_id=2)),
    "mistral-embedder-tiny": ("MistralConfig", "MistralModel", "LAST", dict(
        vocab_size=VOCAB, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
        rms_norm_eps=1e-6, rope_theta=10000.0, sliding_window=None, pad_token_id=0,
        bos_token_id=1, eos_token_id=2)),
}


def inputs(seed):
    g = torch.Generator().manual_seed(seed)
    return [torch.randint(3, VOCAB, (n,), generator=g).tolist() for n in (1, 7, 45)]


@torch.no_grad()
def run_case(name, out_root):
    cfg_cls, model_cls, pooling, kwargs = CASES[name]
    torch.manual_seed(zlib.crc32(name.encode()))
    config = getattr(transformers, cfg_cls)(**kwargs)
    config.architectures = [model_cls]
    model = getattr(transformers, model_cls)(config, add_pooling_layer=False) if model_cls != "MistralModel" \
        else getattr(transformers, model_cls)(config)
    model = model.to(torch.float32).eval()
    for p in model.parameters():  # every weight must matter, so none may be left at exactly 1 or 0
        p.add_(torch.randn_like(p) * 0.02)
    out = os.path.join(out_root, name)
    model.save_pretrained(out)
    hidden, records = {}, []
    for i, ids in enumerate(inputs(zlib.crc32(name.encode()) % 1000)):
        x = torch.tensor([ids])
        kw = {"token_type_ids": torch.zeros_like(x)} if model_cls == "BertModel" else {}
        states = model(input_ids=x, attention_mask=torch.ones_like(x), **kw).last_hidden_state[0].float()
        hidden[f"input{i}"] = states.contiguous()
        pooled = states[0] if pooling == "CLS" else states[-1]
        records.append({"token_ids": ids,
                        "pooled_normalized": torch.nn.functional.normalize(pooled, dim=0).tolist()})
    save_file(hidden, os.path.join(out, "hidden.safetensors"))
    with open(os.path.join(out, "goldens.json"), "w") as f:
        json.dump({"case": name, "architecture": model_cls, "pooling": pooling,
                   "transformers": transformers.__version__, "torch": torch.__version__,
                   "inputs": records}, f, indent=1)
    print(f"{name}: {sum(p.numel() for p in model.parameters())} params")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--only", nargs="*")
    args = ap.parse_args()
    torch.use_deterministic_algorithms(True)
    for name in args.only or CASES:
        run_case(name, args.out)


if __name__ == "__main__":
    main()
