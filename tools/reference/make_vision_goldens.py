"""Vision-language references: tiny random-weight LLaVA checkpoints (a CLIP vision tower, the
two-layer projector and a Llama), HF's float32 logits and greedy tokens on prompts holding images,
and the pixel values CLIP's preprocessing gives for images of other sizes, for the Java tests.

Run on the GPU machine (Transformers 5.17, PIL, no network):
    python3 tools/reference/make_vision_goldens.py --out OUTDIR
Each case becomes OUTDIR/<name>/ with config.json, preprocessor_config.json, model.safetensors
(bfloat16 values stored as BF16; the reference runs in float32), images/*.png, logits.safetensors
("prompt<i>" = logits at every position of prompt i, with its image placeholders expanded;
"features<j>" = the projector's output for image j) and goldens.json. OUTDIR/preprocessing/ holds
images of several sizes and "pixels<i>" = the pixel values [3, H, W] of image i, computed with
PIL's bicubic resize as CLIPImageProcessor (the PIL one) computes them, and with the processor
Transformers picks by default, so that the two can be compared.
"""
import argparse
import json
import os
import zlib

import numpy as np
import torch
import transformers
from PIL import Image
from safetensors.torch import save_file

GREEDY_TOKENS = 16
VOCAB = 512
IMAGE_TOKEN = 500
MEAN = [0.48145466, 0.4578275, 0.40821073]
STD = [0.26862954, 0.26130258, 0.27577711]


def vision(**kw):
    base = dict(model_type="clip_vision_model", hidden_size=32, intermediate_size=64, num_hidden_layers=3,
                num_attention_heads=4, image_size=56, patch_size=14, projection_dim=32, hidden_act="quick_gelu",
                layer_norm_eps=1e-5)
    base.update(kw)
    return base


def text(**kw):
    base = dict(model_type="llama", vocab_size=VOCAB, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256, rms_norm_eps=1e-6,
                tie_word_embeddings=False, bos_token_id=1, eos_token_id=2, pad_token_id=0)
    base.update(kw)
    return base


# name -> LlavaConfig kwargs
CASES = {
    "llava-default": dict(vision_config=vision(), text_config=text(), image_token_id=IMAGE_TOKEN,
                          projector_hidden_act="gelu", vision_feature_layer=-2,
                          vision_feature_select_strategy="default", image_seq_length=16),
    "llava-full-last": dict(vision_config=vision(num_hidden_layers=2, hidden_act="gelu"),
                            text_config=text(num_key_value_heads=4, tie_word_embeddings=True),
                            image_token_id=IMAGE_TOKEN, projector_hidden_act="gelu", vision_feature_layer=-1,
                            vision_feature_select_strategy="full", image_seq_length=17),
}


def make_image(seed, width, height):
    g = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([x * 255 / max(width - 1, 1), y * 255 / max(height - 1, 1),
                     (x + y) * 127 / max(width + height - 2, 1)], axis=-1)
    noisy = base + g.normal(0, 40, base.shape)
    return Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8), "RGB")


def pil_pixels(image, shortest, crop):
    """CLIP's preprocessing as the PIL processor does it: bicubic resize of the shortest edge,
    center crop, 1/255, normalize."""
    w, h = image.size
    if w <= h:
        new_w, new_h = shortest, int(shortest * h / w)
    else:
        new_w, new_h = int(shortest * w / h), shortest
    resized = image.resize((new_w, new_h), Image.BICUBIC, reducing_gap=None)
    a = np.asarray(resized)
    top, left = (new_h - crop) // 2, (new_w - crop) // 2
    a = a[top:top + crop, left:left + crop]
    x = (a.astype(np.float64) * (1 / 255)).astype(np.float32)
    x = (x - np.array(MEAN, dtype=np.float32)) / np.array(STD, dtype=np.float32)
    return torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)))


def image_processor(size):
    kwargs = dict(size={"shortest_edge": size}, crop_size={"height": size, "width": size}, do_center_crop=True,
                  do_normalize=True, image_mean=MEAN, image_std=STD, do_rescale=True, rescale_factor=1 / 255,
                  resample=3, do_convert_rgb=True)
    return transformers.CLIPImageProcessor(**kwargs)


@torch.no_grad()
def run_case(name, out_root):
    torch.manual_seed(zlib.crc32(name.encode()))
    config = transformers.LlavaConfig(**CASES[name])
    model = transformers.LlavaForConditionalGeneration(config).to(torch.float32).eval()
    for p in model.parameters():
        p.add_(torch.randn_like(p) * 0.02)
        p.copy_(p.to(torch.bfloat16).to(torch.float32))
    out = os.path.join(out_root, name)
    model.save_pretrained(out)
    from make_goldens import store_as_bf16
    store_as_bf16(out)
    size = config.vision_config.image_size
    processor = image_processor(size)
    processor.save_pretrained(out)
    os.makedirs(os.path.join(out, "images"), exist_ok=True)
    images = [make_image(1, size, size), make_image(2, 83, 61)]
    for j, image in enumerate(images):
        image.save(os.path.join(out, "images", f"image{j}.png"))
    pixels = torch.stack([pil_pixels(im, size, size) for im in images])
    seq = config.image_seq_length
    g = torch.Generator().manual_seed(7)

    def words(n):
        return torch.randint(3, IMAGE_TOKEN, (n,), generator=g).tolist()

    cases = [  # (prompt ids with placeholders expanded, indices of its images)
        ([1] + words(3) + [IMAGE_TOKEN] * seq + words(4), [0]),
        ([1] + [IMAGE_TOKEN] * seq + words(2) + [IMAGE_TOKEN] * seq + words(5), [0, 1]),
        ([1] + words(9), []),
    ]
    tensors, records = {}, []
    try:
        found = model.get_image_features(pixel_values=pixels)
        if getattr(found, "pooler_output", None) is not None:
            found = found.pooler_output
        if torch.is_tensor(found):
            found = list(found) if found.dim() == 3 else list(torch.split(found, found.shape[0] // len(images)))
        for j, t in enumerate(found):
            tensors[f"features{j}"] = t.reshape(-1, t.shape[-1]).float().contiguous()
    except Exception as e:  # noqa: BLE001 - the logits are the reference; the features only help to debug
        print("features not recorded:", repr(e))
    for i, (ids, which) in enumerate(cases):
        pv = pixels[which] if which else None
        logits = model(input_ids=torch.tensor([ids]), pixel_values=pv).logits[0].float()
        tensors[f"prompt{i}"] = logits.contiguous()
        run, greedy = list(ids), []
        for _ in range(GREEDY_TOKENS):
            nxt = int(model(input_ids=torch.tensor([run]), pixel_values=pv).logits[0, -1].argmax())
            greedy.append(nxt)
            run.append(nxt)
        records.append({"prompt_token_ids": ids, "images": which, "greedy_token_ids": greedy})
    save_file(tensors, os.path.join(out, "logits.safetensors"))
    with open(os.path.join(out, "goldens.json"), "w") as f:
        json.dump({"case": name, "architecture": "LlavaForConditionalGeneration",
                   "transformers": transformers.__version__, "torch": torch.__version__,
                   "image_files": [f"images/image{j}.png" for j in range(len(images))], "prompts": records}, f, indent=1)
    from safetensors import safe_open
    with safe_open(os.path.join(out, "model.safetensors"), "pt") as f:
        keys = sorted(f.keys())
    print(f"{name}: {sum(p.numel() for p in model.parameters())} params; keys e.g. {keys[:3]} ... {keys[-3:]}")


def preprocessing(out_root):
    out = os.path.join(out_root, "preprocessing")
    os.makedirs(out, exist_ok=True)
    sizes = [(83, 61), (90, 120), (30, 40), (56, 56), (200, 57)]
    tensors, default_diffs = {}, []
    processor = image_processor(56)
    for i, (w, h) in enumerate(sizes):
        image = make_image(10 + i, w, h)
        image.save(os.path.join(out, f"image{i}.png"))
        tensors[f"pixels{i}"] = pil_pixels(image, 56, 56).contiguous()
        try:
            default = processor(images=image, return_tensors="pt")["pixel_values"][0]
            default_diffs.append(float((default - tensors[f"pixels{i}"]).abs().max()))
        except Exception as e:  # noqa: BLE001 - recorded, not fatal
            default_diffs.append(repr(e))
    save_file(tensors, os.path.join(out, "pixels.safetensors"))
    with open(os.path.join(out, "preprocessing.json"), "w") as f:
        json.dump({"sizes": sizes, "shortest_edge": 56, "crop": 56, "mean": MEAN, "std": STD,
                   "processor_class": type(processor).__name__,
                   "processor_max_abs_difference_from_pil": default_diffs,
                   "transformers": transformers.__version__, "pillow": Image.__version__}, f, indent=1)
    print("preprocessing:", type(processor).__name__, default_diffs)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    torch.use_deterministic_algorithms(True)
    import sys
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    preprocessing(args.out)
    for name in CASES:
        run_case(name, args.out)


if __name__ == "__main__":
    main()
