"""Sequence-classification goldens: tiny random BertForSequenceClassification and
XLMRobertaForSequenceClassification checkpoints (a classifier of 3 labels and cross-encoders of 1),
and decoders' Qwen2ForSequenceClassification (2 labels) and LlamaForSequenceClassification (1, a reward model's)
with Hugging Face Transformers' own float32 logits, for single inputs and for pairs of segments.

Run on the GPU machine (Transformers 5.17, no network), from the repository root:
    python3 tools/reference/make_classification_goldens.py \
        --out model-zoo/src/test/resources/classification-goldens [--only NAME ...]
Each case becomes OUT/<name>/ with config.json, model.safetensors (float32, saved by the
*ForSequenceClassification class: "bert."/"roberta." prefixes and the head's own names) and
goldens.json: per input its token ids, its token type ids (BERT: 0 for the first segment, 1 for
the second; XLM-RoBERTa: all 0) and the logits.
"""
import argparse
import json
import os
import zlib

import torch
import transformers

VOCAB = 512

CASES = {
    "bert-classifier-tiny": ("BertConfig", "BertForSequenceClassification", dict(
        vocab_size=VOCAB, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, max_position_embeddings=128, type_vocab_size=2,
        hidden_act="gelu", layer_norm_eps=1e-12, pad_token_id=0, num_labels=3,
        id2label={0: "negative", 1: "neutral", 2: "positive"},
        label2id={"negative": 0, "neutral": 1, "positive": 2})),
    "bert-cross-encoder-tiny": ("BertConfig", "BertForSequenceClassification", dict(
        vocab_size=VOCAB, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, max_position_embeddings=128, type_vocab_size=2,
        hidden_act="gelu", layer_norm_eps=1e-12, pad_token_id=0, num_labels=1)),
    "xlm-roberta-cross-encoder-tiny": ("XLMRobertaConfig", "XLMRobertaForSequenceClassification", dict(
        vocab_size=VOCAB, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, max_position_embeddings=130, type_vocab_size=1,
        hidden_act="gelu", layer_norm_eps=1e-5, pad_token_id=1, bos_token_id=0, eos_token_id=2, num_labels=1)),
    "qwen2-classifier-tiny": ("Qwen2Config", "Qwen2ForSequenceClassification", dict(
        vocab_size=VOCAB, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256, rms_norm_eps=1e-6,
        rope_theta=10000.0, pad_token_id=0, bos_token_id=1, eos_token_id=2, num_labels=2,
        tie_word_embeddings=False)),
    "llama-reward-tiny": ("LlamaConfig", "LlamaForSequenceClassification", dict(
        vocab_size=VOCAB, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=256, rms_norm_eps=1e-6,
        rope_theta=10000.0, pad_token_id=0, bos_token_id=1, eos_token_id=2, num_labels=1,
        tie_word_embeddings=False)),
}


def inputs(seed, pairs):
    """Token ids and type ids: single inputs of 1, 7 and 45 tokens, and (with pairs) segments of 5 + 9 and 12 + 3."""
    g = torch.Generator().manual_seed(seed)
    out = [(torch.randint(3, VOCAB, (n,), generator=g).tolist(), [0] * n) for n in (1, 7, 45)]
    for first, second in ((5, 9), (12, 3)):
        ids = torch.randint(3, VOCAB, (first + second,), generator=g).tolist()
        out.append((ids, [0] * first + [1 if pairs else 0] * second))
    return out


@torch.no_grad()
def run_case(name, out_root):
    cfg_cls, model_cls, kwargs = CASES[name]
    torch.manual_seed(zlib.crc32(name.encode()))
    config = getattr(transformers, cfg_cls)(**kwargs)
    config.architectures = [model_cls]
    model = getattr(transformers, model_cls)(config).to(torch.float32).eval()
    for p in model.parameters():  # every weight must matter, so none may be left at exactly 1 or 0
        p.add_(torch.randn_like(p) * 0.02)
    out = os.path.join(out_root, name)
    model.save_pretrained(out)
    records = []
    typed = getattr(config, "type_vocab_size", 1) > 1
    for ids, types in inputs(zlib.crc32(name.encode()) % 1000, typed):
        x = torch.tensor([ids])
        kw = {"token_type_ids": torch.tensor([types])} if typed else {}
        logits = model(input_ids=x, attention_mask=torch.ones_like(x), **kw).logits[0].float()
        records.append({"token_ids": ids, "token_type_ids": types, "logits": logits.tolist()})
    with open(os.path.join(out, "goldens.json"), "w") as f:
        json.dump({"case": name, "architecture": model_cls, "num_labels": config.num_labels,
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
