"""Checks that a fresh run of a golden script reproduces the goldens committed in the repository:
the same goldens.json (token ids, prompts, counts), the same tensors in model.safetensors, and
logits within a float32 run-to-run tolerance. Tensors the fresh run adds are named, not failed.

    python3 tools/reference/compare_goldens.py FRESH_DIR COMMITTED_DIR

Each case directory under FRESH_DIR is compared with the one of the same name under COMMITTED_DIR.
Prints one line a case and exits 1 when any case differs.
"""
import json
import os
import sys

import torch
from safetensors.torch import load_file

LOGIT_TOLERANCE = 1e-4


def tensors_differ(fresh_path, committed_path, tolerance):
    fresh, committed = load_file(fresh_path), load_file(committed_path)
    missing = sorted(committed.keys() - fresh.keys())
    if missing:
        return f"the fresh run lacks {missing[:5]}"
    worst = 0.0
    for name, other in committed.items():
        value = fresh[name]
        if value.shape != other.shape or value.dtype != other.dtype:
            return f"{name}: {value.dtype}{list(value.shape)} against {other.dtype}{list(other.shape)}"
        worst = max(worst, (value.float() - other.float()).abs().max().item() if value.numel() else 0.0)
    return f"largest difference {worst:.3g}" if worst > tolerance else None


def added_tensors(fresh_path, committed_path):
    """Tensors a fresh run writes that the committed file does not hold (what the script gained)."""
    return sorted(load_file(fresh_path).keys() - load_file(committed_path).keys())


def compare_case(fresh_dir, committed_dir):
    problems = []
    with open(os.path.join(fresh_dir, "goldens.json")) as f:
        fresh = json.load(f)
    with open(os.path.join(committed_dir, "goldens.json")) as f:
        committed = json.load(f)
    if fresh != committed:
        keys = [k for k in set(fresh) | set(committed) if fresh.get(k) != committed.get(k)]
        problems.append(f"goldens.json differs in {sorted(keys)}")
    for file, tolerance in (("model.safetensors", 0.0), ("logits.safetensors", LOGIT_TOLERANCE)):
        a, b = os.path.join(fresh_dir, file), os.path.join(committed_dir, file)
        if os.path.exists(a) != os.path.exists(b):
            problems.append(f"{file} exists in only one")
        elif os.path.exists(a):
            why = tensors_differ(a, b, tolerance)
            if why:
                problems.append(f"{file}: {why}")
            elif added_tensors(a, b):
                print(f"{os.path.basename(fresh_dir)}: {file} of the fresh run adds {added_tensors(a, b)}")
    return problems


def main():
    fresh_root, committed_root = sys.argv[1], sys.argv[2]
    failed = False
    for case in sorted(os.listdir(fresh_root)):
        fresh_dir, committed_dir = os.path.join(fresh_root, case), os.path.join(committed_root, case)
        if not os.path.exists(os.path.join(fresh_dir, "goldens.json")):
            continue
        if not os.path.isdir(committed_dir):
            print(f"{case}: not committed")
            failed = True
            continue
        problems = compare_case(fresh_dir, committed_dir)
        print(f"{case}: {'reproduced' if not problems else '; '.join(problems)}")
        failed |= bool(problems)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
