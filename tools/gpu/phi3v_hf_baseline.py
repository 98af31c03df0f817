"""Phi-3-Vision in PyTorch eager on VisionBenchmark's workload, same checkpoint and card: the Hub's model is
custom code that Transformers does not ship, so this runs its equivalent, Transformers' CLIPVisionModel and
Phi3ForCausalLM joined by the HD transform (tools/reference/make_vision_goldens.py's Phi3VReference and
phi3v_pixels, Pillow's preprocessing), with Phi3ForCausalLM's generate over the joined embeddings. One request
with a random 640 x 480 image alone (first token, then 128 tokens), then N requests batched in one generate.
Prints JSON lines. Usage: python3 tools/gpu/phi3v_hf_baseline.py DIR [N]"""
import os
import sys
import time

import numpy as np
import torch
from PIL import Image
from safetensors.torch import load_file

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "reference"))
import make_vision_goldens as goldens  # noqa: E402
from make_phi3v_checkpoint import configs  # noqa: E402
from vision_hf_baseline import measure  # noqa: E402

IMAGE_TOKEN = 32044


def load(path):
    text, vision = configs()
    with torch.device("cuda"):
        model = goldens.Phi3VReference(text, vision).to(torch.bfloat16).eval()
    clip_keys = set(model.clip.state_dict())
    state = {}
    for name, tensor in load_file(os.path.join(path, "model.safetensors")).items():
        if name.startswith("lm_head."):
            state["lm." + name] = tensor
        elif name.startswith("model.vision_embed_tokens.img_processor.vision_model."):
            rest = name[len("model.vision_embed_tokens.img_processor."):]
            state["clip." + (rest if rest in clip_keys else rest[len("vision_model."):])] = tensor
        elif name.startswith("model.vision_embed_tokens."):
            state[name[len("model.vision_embed_tokens."):]] = tensor
        else:
            state["lm." + name] = tensor
    model.load_state_dict(state, strict=True)
    return model


def main():
    path, n, output = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 64, 128
    model = load(path)
    rng = np.random.default_rng(7)
    question = rng.integers(100, 30000, 24).tolist()

    def embeds(count):
        # All the batch's crops through CLIP in one call, as the Hub code runs pixel_values of (images, crops).
        prepared = [goldens.phi3v_pixels(Image.fromarray(rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)), 16, 336)
                    for _ in range(count)]
        states = model.states(torch.cat([c for c, _ in prepared]).to("cuda", torch.bfloat16))
        rows, at = [], 0
        for c, size in prepared:
            features = model.features(None, size, 336, states=states[at:at + c.shape[0]])
            at += c.shape[0]
            ids = [1] + [IMAGE_TOKEN] * features.shape[0] + [13] + question
            x = model.lm.model.embed_tokens(torch.tensor([ids], device="cuda"))
            x[0, 1:1 + features.shape[0]] = features
            rows.append(x)
        return torch.cat(rows)

    def run(count, tokens):
        torch.cuda.synchronize()
        start = time.perf_counter()
        x = embeds(count)
        model.lm.generate(inputs_embeds=x, attention_mask=torch.ones(x.shape[:2], dtype=torch.long, device="cuda"),
                          max_new_tokens=tokens, min_new_tokens=tokens, do_sample=False)
        torch.cuda.synchronize()
        return time.perf_counter() - start

    measure(run, n, output, "pytorch-eager")

if __name__ == "__main__":
    main()
