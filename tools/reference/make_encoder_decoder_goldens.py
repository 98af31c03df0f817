"""Encoder-decoder references: tiny random-weight BART and T5 checkpoints built from configs with Hugging
Face Transformers, and HF's own float32 outputs, for the Java tests of the encoder-decoder plugin to match.

Run on the GPU machine (Transformers 5.17, no network):
    python3 tools/reference/make_encoder_decoder_goldens.py --out OUTDIR
Each case becomes OUTDIR/<name>/ with config.json, generation_config.json, model.safetensors (weights
rounded to bfloat16 values and stored as BF16; the reference runs in float32 on exactly those values),
logits.safetensors ("prompt<i>" = the decoder's logits at every position of decoder input
[decoder_start] + greedy[:-1], [16, vocab]) and goldens.json (encoder prompts, 16 greedy tokens each,
from decoder_start_token_id, end of sequence ignored).
"""
import argparse
import json
import os
import zlib

import torch
import transformers
from safetensors.torch import save_file

from make_goldens import store_as_bf16  # the weights as BF16 where bfloat16 holds them exactly

GREEDY_TOKENS = 16
VOCAB = 512

CASES = {
    # BART-base's layout (post-norm layers, GELU, learned positions offset by 2, unscaled embeddings).
    "bart": dict(vocab_size=VOCAB, d_model=32, encoder_layers=2, decoder_layers=2, encoder_attention_heads=4,
                 decoder_attention_heads=4, encoder_ffn_dim=64, decoder_ffn_dim=48, max_position_embeddings=128,
                 activation_function="gelu", scale_embedding=False),
    # Embeddings scaled by sqrt(d_model), ReLU, more decoder than encoder layers.
    "bart-scaled": dict(vocab_size=VOCAB, d_model=48, encoder_layers=1, decoder_layers=3, encoder_attention_heads=6,
                        decoder_attention_heads=4, encoder_ffn_dim=96, decoder_ffn_dim=64, max_position_embeddings=96,
                        activation_function="relu", scale_embedding=True),
}

# T5: pre-norm RMSNorm stacks, relative position buckets, unscaled attention; decoder_start = pad = 0, eos = 1.
T5_CASES = {
    # T5 v1.0's layout: ReLU feed-forward, the LM head tied to the embeddings (and scaled by d_model^-0.5).
    "t5": dict(vocab_size=VOCAB, d_model=32, d_kv=8, d_ff=64, num_layers=2, num_decoder_layers=2, num_heads=4,
               relative_attention_num_buckets=32, relative_attention_max_distance=128, feed_forward_proj="relu",
               tie_word_embeddings=True),
    # T5 v1.1 / Flan-T5's: gated GELU, an LM head of its own, heads wider than d_model / heads, 3 decoder layers,
    # fewer buckets and a shorter distance, so that the 60-token prompt reaches the logarithmic buckets.
    "t5-gated": dict(vocab_size=VOCAB, d_model=32, d_kv=12, d_ff=48, num_layers=2, num_decoder_layers=3, num_heads=4,
                     relative_attention_num_buckets=16, relative_attention_max_distance=20,
                     feed_forward_proj="gated-gelu", tie_word_embeddings=False),
}

# BART's relatives: mBART (pre-norm layers, a final norm on each stack, scaled embeddings) and Marian
# (sinusoidal positions that the checkpoint does not hold, no embedding norm, SiLU, decoder start = pad).
BART_FAMILY = {
    "mbart": ("MBartConfig", "MBartForConditionalGeneration",
              dict(vocab_size=VOCAB, d_model=32, encoder_layers=2, decoder_layers=2, encoder_attention_heads=4,
                   decoder_attention_heads=4, encoder_ffn_dim=64, decoder_ffn_dim=48, max_position_embeddings=128,
                   activation_function="gelu", scale_embedding=True, pad_token_id=1, bos_token_id=0, eos_token_id=2,
                   decoder_start_token_id=2)),
    "marian": ("MarianConfig", "MarianMTModel",
               dict(vocab_size=VOCAB, d_model=32, encoder_layers=2, decoder_layers=2, encoder_attention_heads=4,
                    decoder_attention_heads=4, encoder_ffn_dim=64, decoder_ffn_dim=48, max_position_embeddings=128,
                    activation_function="swish", scale_embedding=True, pad_token_id=VOCAB - 1, eos_token_id=0,
                    decoder_start_token_id=VOCAB - 1, share_encoder_decoder_embeddings=True)),
}

# Encoder prompts as BART's tokenizer writes them: <s> (0) ... </s> (2); lengths 9, 17 and 60.
PROMPT_LENGTHS = [9, 17, 60]


def prompts(seed, eos, t5):
    """BART's tokenizer writes <s> (0) ... </s> (2); T5's writes ... </s> (1)."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for n in PROMPT_LENGTHS:
        body = torch.randint(3, VOCAB, (n - 1 if t5 else n - 2,), generator=g).tolist()
        out.append(body + [eos] if t5 else [0] + body + [eos])
    return out


def build(name, kwargs):
    """The case's model with random bfloat16-valued weights: norms near 1, embeddings at unit scale, the rest small."""
    if name in BART_FAMILY:
        config_class, model_class, kwargs = BART_FAMILY[name]
        config = getattr(transformers, config_class)(dropout=0.0, attention_dropout=0.0, activation_dropout=0.0,
                                                     forced_bos_token_id=None, forced_eos_token_id=None, **kwargs)
        model = getattr(transformers, model_class)(config).eval()
    elif name.startswith("t5"):
        config = transformers.T5Config(pad_token_id=0, eos_token_id=1, decoder_start_token_id=0, dropout_rate=0.0,
                                       layer_norm_epsilon=1e-6, **kwargs)
        model = transformers.T5ForConditionalGeneration(config).eval()
    else:
        config = transformers.BartConfig(pad_token_id=1, bos_token_id=0, eos_token_id=2, decoder_start_token_id=2,
                                         forced_bos_token_id=None, forced_eos_token_id=None, dropout=0.0,
                                         attention_dropout=0.0, activation_dropout=0.0, tie_word_embeddings=True, **kwargs)
        model = transformers.BartForConditionalGeneration(config).eval()
    with torch.no_grad():
        for pname, p in model.named_parameters():
            if "embed_positions" in pname and name == "marian":
                continue  # Marian's sinusoidal table, which its checkpoints leave out
            # Layer norms and biases random too, so that none is an identity; the norms' weights near 1 and
            # the embeddings at unit scale, so that the logits vary with the input more than the bias does.
            if "layer_norm" in pname or "layernorm" in pname:
                p.normal_(1.0 if pname.endswith("weight") else 0.0, 0.2)
            elif pname.endswith("shared.weight") or pname.endswith("relative_attention_bias.weight"):
                p.normal_(0.0, 1.0)
            else:
                p.normal_(0.0, 0.2)
            p.copy_(p.to(torch.bfloat16).to(torch.float32))
        if hasattr(model, "final_logits_bias"):
            model.final_logits_bias.normal_(0.0, 0.1)
            model.final_logits_bias.copy_(model.final_logits_bias.to(torch.bfloat16).to(torch.float32))
    return config, model


def make(name, kwargs, out_dir):
    torch.manual_seed(zlib.crc32(name.encode()))
    config, model = build(name, kwargs)
    model.config.dtype = "float32"
    model.save_pretrained(out_dir, safe_serialization=True)
    store_as_bf16(out_dir)
    cases, logits = [], {}
    for i, enc in enumerate(prompts(zlib.crc32(name.encode()) + 1, config.eos_token_id, name.startswith("t5") or name == "marian")):
        ids = torch.tensor([enc])
        dec = [config.decoder_start_token_id]
        with torch.no_grad():
            encoded = model.get_encoder()(input_ids=ids)
            for _ in range(GREEDY_TOKENS):
                step = model(encoder_outputs=encoded, decoder_input_ids=torch.tensor([dec])).logits[0, -1]
                dec.append(int(step.argmax()))
            full = model(input_ids=ids, decoder_input_ids=torch.tensor([dec[:-1]])).logits[0]
        logits[f"prompt{i}"] = full.contiguous()
        cases.append(dict(encoder_token_ids=enc, decoder_start=config.decoder_start_token_id, greedy_token_ids=dec[1:]))
    save_file(logits, os.path.join(out_dir, "logits.safetensors"))
    with open(os.path.join(out_dir, "goldens.json"), "w") as f:
        json.dump(dict(prompts=cases, transformers=transformers.__version__, torch=torch.__version__), f, indent=1)
    print(name, [len(c["encoder_token_ids"]) for c in cases], "files", sorted(os.listdir(out_dir)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--only", nargs="*")
    args = ap.parse_args()
    for name, kwargs in {**CASES, **T5_CASES, **{n: None for n in BART_FAMILY}}.items():
        if args.only and name not in args.only:
            continue
        out_dir = os.path.join(args.out, name)
        os.makedirs(out_dir, exist_ok=True)
        make(name, kwargs, out_dir)


if __name__ == "__main__":
    main()
