#!/usr/bin/env python3
"""Writes expected.json: what Hugging Face's own libraries produce for jvllm's tokenizer tests.

For each tokenizer folder (tokenizer.json + tokenizer_config.json) under --tokenizers and each
case in --cases, records:
  * texts: ids with and without special tokens from transformers.AutoTokenizer, the same from the
    raw `tokenizers` library, the token strings, and decode() with and without special tokens
    (clean_up_tokenization_spaces=False, as jvllm decodes);
  * chats: apply_chat_template(..., tokenize=False) output, or the error it raised.

Needs only python3 with transformers (and the tokenizers it depends on); works offline.

  python3 tools/reference/tokenizer_expected.py --tokenizers DIR \
      --cases tools/reference/tokenizer_cases.json --out expected.json
"""
import argparse
import json
import os
import sys
import traceback

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import tokenizers  # noqa: E402
import transformers  # noqa: E402
from transformers import AutoTokenizer, PreTrainedTokenizerFast  # noqa: E402


def case_text(case):
    return case["text"] * case.get("repeat", 1)


def load(folder, texts):
    """AutoTokenizer as a user would call it, unless its ids differ from tokenizer.json's own.

    transformers v5 routes tokenizer_class "LlamaTokenizerFast" to a LlamaTokenizer that replaces
    the pre-tokenizer and decoder of tokenizer.json with SentencePiece's Metaspace, which drops
    every space for byte-level files such as DeepSeek-V3's (transformers#45488; vLLM loads those
    with TokenizersBackend instead). When AutoTokenizer's ids disagree with the raw tokenizers
    library on any case, this falls back to PreTrainedTokenizerFast, which keeps tokenizer.json's
    pipeline, and records why.
    """
    raw = tokenizers.Tokenizer.from_file(os.path.join(folder, "tokenizer.json"))
    problem = None
    try:
        tok = AutoTokenizer.from_pretrained(folder, local_files_only=True)
        differing = [t["name"] for t in texts
                     if tok(case_text(t), add_special_tokens=False)["input_ids"]
                     != raw.encode(case_text(t), add_special_tokens=False).ids]
        if not differing:
            return tok, raw, "AutoTokenizer", None
        problem = (f"AutoTokenizer ({type(tok).__name__}) ids differ from tokenizer.json's pipeline on "
                   f"{len(differing)} cases: {', '.join(differing[:8])}")
    except Exception as e:  # noqa: BLE001 - record why, then fall back
        problem = f"AutoTokenizer failed: {type(e).__name__}: {e}"
    tok = PreTrainedTokenizerFast.from_pretrained(folder, local_files_only=True)
    return tok, raw, "PreTrainedTokenizerFast", problem


def text_entry(tok, raw, case):
    text = case_text(case)
    with_special = tok(text, add_special_tokens=True)["input_ids"]
    without_special = tok(text, add_special_tokens=False)["input_ids"]
    raw_with = raw.encode(text, add_special_tokens=True).ids
    raw_without = raw.encode(text, add_special_tokens=False).ids
    return {
        "name": case["name"],
        "ids_with_special": with_special,
        "ids_without_special": without_special,
        "raw_ids_with_special": raw_with,
        "raw_ids_without_special": raw_without,
        "tokens_without_special": tok.convert_ids_to_tokens(without_special),
        "decoded_with_special": tok.decode(
            with_special, skip_special_tokens=False, clean_up_tokenization_spaces=False),
        "decoded_skip_special": tok.decode(
            with_special, skip_special_tokens=True, clean_up_tokenization_spaces=False),
        "raw_decoded_with_special": raw.decode(raw_with, skip_special_tokens=False),
        "raw_decoded_skip_special": raw.decode(raw_with, skip_special_tokens=True),
    }


def chat_entry(tok, case):
    entry = {"name": case["name"], "add_generation_prompt": case["add_generation_prompt"]}
    try:
        entry["prompt"] = tok.apply_chat_template(
            case["messages"],
            tokenize=False,
            add_generation_prompt=case["add_generation_prompt"],
            **case.get("variables", {}),
        )
    except Exception as e:  # noqa: BLE001 - a template may reject a conversation on purpose
        entry["error"] = f"{type(e).__name__}: {e}"
    return entry


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokenizers", required=True, help="folder with one sub-folder per tokenizer")
    parser.add_argument("--cases", required=True, help="tokenizer_cases.json")
    parser.add_argument("--out", required=True, help="where to write expected.json")
    args = parser.parse_args()

    with open(args.cases, encoding="utf-8") as f:
        cases = json.load(f)

    result = {
        "generator": "tools/reference/tokenizer_expected.py",
        "transformers_version": transformers.__version__,
        "tokenizers_version": tokenizers.__version__,
        "python_version": sys.version.split()[0],
        "cases": cases,
        "tokenizers": {},
    }
    summary = []
    failed = False
    for name in sorted(os.listdir(args.tokenizers)):
        folder = os.path.join(args.tokenizers, name)
        if not os.path.isfile(os.path.join(folder, "tokenizer.json")):
            continue
        try:
            tok, raw, loader, problem = load(folder, cases["texts"])
            entry = {
                "loader": loader,
                "auto_tokenizer_problem": problem,
                "tokenizer_class": type(tok).__name__,
                "vocab_size": len(tok),
                "bos_token_id": tok.bos_token_id,
                "eos_token_id": tok.eos_token_id,
                "all_special_ids": sorted(set(tok.all_special_ids)),
                "has_chat_template": tok.chat_template is not None,
                "texts": [text_entry(tok, raw, c) for c in cases["texts"]],
                "chats": [chat_entry(tok, c) for c in cases["chats"]] if tok.chat_template is not None else [],
            }
        except Exception:  # noqa: BLE001 - keep going, report at the end
            failed = True
            traceback.print_exc()
            summary.append(f"{name:12s} FAILED (see traceback above)")
            continue
        result["tokenizers"][name] = entry
        raw_mismatch = sum(
            1 for t in entry["texts"]
            if t["ids_with_special"] != t["raw_ids_with_special"]
            or t["ids_without_special"] != t["raw_ids_without_special"])
        chat_errors = sum(1 for c in entry["chats"] if "error" in c)
        longest = max(len(t["ids_without_special"]) for t in entry["texts"])
        summary.append(
            f"{name:12s} {entry['tokenizer_class']:28s} loader={loader:22s} vocab={entry['vocab_size']:6d} "
            f"texts={len(entry['texts'])} (transformers != raw tokenizers: {raw_mismatch}, longest {longest} ids) "
            f"chats={len(entry['chats'])} (raised: {chat_errors})")

    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(result, f, ensure_ascii=False, indent=1)
        f.write("\n")

    print(f"transformers {transformers.__version__}, tokenizers {tokenizers.__version__}")
    for line in summary:
        print(line)
    for name, entry in result["tokenizers"].items():
        if entry["auto_tokenizer_problem"]:
            print(f"note: {name}: {entry['auto_tokenizer_problem']}")
    print(f"wrote {args.out} ({os.path.getsize(args.out)} bytes)")
    return 1 if failed or not result["tokenizers"] else 0


if __name__ == "__main__":
    sys.exit(main())
