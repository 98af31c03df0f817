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
import math
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


def logits_and_greedy(forward, ids):
    """The prompt's logits [len, vocab] (float32) and GREEDY_TOKENS greedy tokens, each step run over the
    whole sequence; forward(ids) gives the logits of a token list."""
    logits = forward(ids).float().contiguous()
    run, greedy = list(ids), []
    for _ in range(GREEDY_TOKENS):
        nxt = int(forward(run)[-1].argmax())
        greedy.append(nxt)
        run.append(nxt)
    return logits, greedy


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


def select_best_resolution(height, width, pinpoints):
    """LLaVA-NeXT's choice of grid (Transformers' select_best_resolution): most effective pixels, then least waste."""
    best, best_effective, best_waste = None, 0, float("inf")
    for h, w in pinpoints:
        scale = min(w / width, h / height)
        effective = min(int(width * scale) * int(height * scale), width * height)
        waste = w * h - effective
        if effective > best_effective or (effective == best_effective and waste < best_waste):
            best, best_effective, best_waste = (h, w), effective, waste
    return best


def next_pixels(image, pinpoints, size):
    """LlavaNextImageProcessor's tiles with PIL: the image scaled into the best grid, centered on
    zeros, cut into size x size tiles, after the whole image squashed to size x size."""
    w, h = image.size
    th, tw = select_best_resolution(h, w, pinpoints)
    if tw / w < th / h:
        nw, nh = tw, min(math.ceil(h * tw / w), th)
    else:
        nw, nh = min(math.ceil(w * th / h), tw), th
    resized = np.asarray(image.resize((nw, nh), Image.BICUBIC, reducing_gap=None))
    padded = np.zeros((th, tw, 3), dtype=np.uint8)
    top, left = (th - nh) // 2, (tw - nw) // 2
    padded[top:top + nh, left:left + nw] = resized
    tiles = [image.resize((size, size), Image.BICUBIC, reducing_gap=None)]
    for y in range(0, th, size):
        for x in range(0, tw, size):
            tiles.append(Image.fromarray(np.ascontiguousarray(padded[y:y + size, x:x + size])))
    return torch.stack([pil_pixels(t, size, size) for t in tiles])


def next_feature_count(height, width, pinpoints, size, patch):
    """LlavaNextProcessor's placeholder count: the base tile's patches, then the unpadded grid with a newline a row."""
    bh, bw = select_best_resolution(height, width, pinpoints)
    side = size // patch
    cur_h, cur_w = side * (bh // size), side * (bw // size)
    if width / height > cur_w / cur_h:
        new_h = int(round(height * (cur_w / width), 7))
        cur_h -= 2 * ((cur_h - new_h) // 2)
    else:
        new_w = int(round(width * (cur_h / height), 7))
        cur_w -= 2 * ((cur_w - new_w) // 2)
    return side * side + cur_h * cur_w + cur_h


NEXT_CASES = {  # name -> the language model's config
    "llava-next": text(),
    # llava-v1.6-mistral's shape: a Mistral language model, here with a sliding window shorter than the prompts
    "llava-next-mistral": text(model_type="mistral", sliding_window=24, num_key_value_heads=1, rope_theta=1e6),
}


@torch.no_grad()
def run_next_case(name, out_root):
    torch.manual_seed(zlib.crc32(name.encode()))
    pinpoints = [[56, 112], [112, 56], [112, 112], [56, 168]]
    config = transformers.LlavaNextConfig(vision_config=vision(), text_config=NEXT_CASES[name], image_token_id=IMAGE_TOKEN,
                                          projector_hidden_act="gelu", vision_feature_layer=-2,
                                          vision_feature_select_strategy="default", image_grid_pinpoints=pinpoints)
    model, out = saved_model(transformers.LlavaNextForConditionalGeneration, config, out_root, name)
    size = config.vision_config.image_size
    with open(os.path.join(out, "preprocessor_config.json")) as f:
        pre = json.load(f)
    pre.update(image_grid_pinpoints=pinpoints, image_processor_type="LlavaNextImageProcessor")
    with open(os.path.join(out, "preprocessor_config.json"), "w") as f:
        json.dump(pre, f, indent=1)
    os.makedirs(os.path.join(out, "images"), exist_ok=True)
    images = [make_image(21, 83, 61), make_image(22, 40, 130), make_image(23, 150, 50), make_image(24, 56, 56)]
    for j, image in enumerate(images):
        image.save(os.path.join(out, "images", f"image{j}.png"))
    counts = [next_feature_count(im.size[1], im.size[0], pinpoints, size, config.vision_config.patch_size) for im in images]
    tiles = [next_pixels(im, pinpoints, size) for im in images]
    g = torch.Generator().manual_seed(9)

    def words(n):
        return torch.randint(3, IMAGE_TOKEN, (n,), generator=g).tolist()

    cases = [([1] + words(3) + [IMAGE_TOKEN] * counts[0] + words(4), [0]),
             ([1] + [IMAGE_TOKEN] * counts[1] + words(2) + [IMAGE_TOKEN] * counts[2] + words(5), [1, 2]),
             ([1] + words(2) + [IMAGE_TOKEN] * counts[3] + words(3), [3])]
    tensors, records = {}, []
    for i, (ids, which) in enumerate(cases):
        most = max(tiles[j].shape[0] for j in which)
        pv = torch.zeros(len(which), most, 3, size, size)
        for k, j in enumerate(which):
            pv[k, :tiles[j].shape[0]] = tiles[j]
        sizes = torch.tensor([[images[j].size[1], images[j].size[0]] for j in which])
        tensors[f"prompt{i}"], greedy = logits_and_greedy(
            lambda seq: model(input_ids=torch.tensor([seq]), pixel_values=pv, image_sizes=sizes).logits[0], ids)
        records.append({"prompt_token_ids": ids, "images": which, "greedy_token_ids": greedy})
    for j, t in enumerate(tiles):
        tensors[f"tiles{j}"] = t.contiguous()
    save_file(tensors, os.path.join(out, "logits.safetensors"))
    with open(os.path.join(out, "goldens.json"), "w") as f:
        json.dump({"case": name, "architecture": "LlavaNextForConditionalGeneration",
                   "transformers": transformers.__version__, "torch": torch.__version__, "feature_counts": counts,
                   "image_files": [f"images/image{j}.png" for j in range(len(images))], "prompts": records}, f, indent=1)
    try:  # the processor Transformers picks, for the record: its tiles against the PIL ones
        hf = transformers.LlavaNextImageProcessor(image_grid_pinpoints=pinpoints, size={"shortest_edge": size},
                                                  crop_size={"height": size, "width": size}, image_mean=MEAN, image_std=STD)
        diffs = [float((hf(images=im, return_tensors="pt")["pixel_values"][0][:tiles[j].shape[0]] - tiles[j]).abs().max())
                 for j, im in enumerate(images)]
    except Exception as e:  # noqa: BLE001
        diffs = repr(e)
    from safetensors import safe_open
    with safe_open(os.path.join(out, "model.safetensors"), "pt") as f:
        keys = [k for k in f.keys() if "layers" not in k]
    print(f"{name}: counts {counts}, tiles {[t.shape[0] for t in tiles]}, HF processor max diff {diffs}; keys {keys}")


IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]
IMAGE_START, IMAGE_END = 501, 502

INTERNVL_CASES = {  # name -> (InternVLVisionConfig kwargs, text config)
    # InternVL3-hf's shape: LayerNorm tower with q/k RMSNorms and biases, the final LayerNorm, a Qwen2 language model
    "internvl-qwen2": (dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4, image_size=56,
                            patch_size=14, use_qk_norm=True, attention_bias=True, norm_type="layer_norm",
                            layer_norm_eps=1e-6, use_mean_pooling=False, layer_scale_init_value=0.1, hidden_act="gelu"),
                       text(model_type="qwen2", num_key_value_heads=2)),
    # RMSNorm tower without q/k norms or the final norm (use_mean_pooling), a Llama language model
    "internvl-rms-llama": (dict(hidden_size=32, intermediate_size=64, num_hidden_layers=3, num_attention_heads=2, image_size=56,
                                patch_size=14, use_qk_norm=False, attention_bias=False, norm_type="rms_norm",
                                layer_norm_eps=1e-6, use_mean_pooling=True, layer_scale_init_value=0.1, hidden_act="gelu"),
                           text()),
    # InternVL2-4B's shape: the RMSNorm tower with a Phi-3 language model (fused qkv_proj and gate_up_proj)
    "internvl-phi3": (dict(hidden_size=32, intermediate_size=64, num_hidden_layers=3, num_attention_heads=2, image_size=56,
                           patch_size=14, use_qk_norm=False, attention_bias=False, norm_type="rms_norm",
                           layer_norm_eps=1e-6, use_mean_pooling=True, layer_scale_init_value=0.1, hidden_act="gelu"),
                      text(model_type="phi3", num_key_value_heads=4)),
}


def save_images(out, images):
    """Each image as images/image<j>.png, with a raw RGB copy images/image<j>-<w>x<h>.rgb."""
    os.makedirs(os.path.join(out, "images"), exist_ok=True)
    for j, image in enumerate(images):
        image.save(os.path.join(out, "images", f"image{j}.png"))
        with open(os.path.join(out, "images", f"image{j}-{image.size[0]}x{image.size[1]}.rgb"), "wb") as f:
            f.write(np.asarray(image).tobytes())


def wrapped_cases(counts, seed):
    """Three prompts, each image's placeholders between IMAGE_START and IMAGE_END: words, image 0,
    words; image 1, words, image 2, words; words alone. (prompt ids, indices of its images)"""
    g = torch.Generator().manual_seed(seed)

    def words(n):
        return torch.randint(3, IMAGE_TOKEN, (n,), generator=g).tolist()

    def image(j):
        return [IMAGE_START] + [IMAGE_TOKEN] * counts[j] + [IMAGE_END]

    return [([1] + words(3) + image(0) + words(4), [0]),
            ([1] + image(1) + words(2) + image(2) + words(5), [1, 2]),
            ([1] + words(6), [])]


def internvl_grid(width, height, size, min_tiles, max_tiles):
    """GotOcr2ImageProcessor's get_optimal_tiled_canvas: (columns, rows) of the closest aspect ratio."""
    grids = sorted([(w, h) for w in range(1, max_tiles + 1) for h in range(1, max_tiles + 1)
                    if min_tiles <= w * h <= max_tiles], key=lambda g: g[0] * g[1])
    ratio, area = width / height, width * height
    best, best_diff = (1, 1), float("inf")
    for g in grids:
        diff = abs(ratio - g[0] / g[1])
        if diff < best_diff:
            best, best_diff = g, diff
        elif diff == best_diff and area > 0.5 * size * size * g[0] * g[1]:
            best = g
    return best


def internvl_pixels(image, size, min_tiles, max_tiles):
    """InternVL's dynamic tiles with PIL (as its original load_image does): the image resized with
    bicubic to the grid, cut into size x size tiles row by row, then the whole image as a thumbnail
    when there is more than one tile; 1/255 and ImageNet's mean and std."""
    w, h = image.size
    cols, rows = internvl_grid(w, h, size, min_tiles, max_tiles)
    resized = np.asarray(image.resize((cols * size, rows * size), Image.BICUBIC, reducing_gap=None))
    tiles = [resized[r * size:(r + 1) * size, c * size:(c + 1) * size] for r in range(rows) for c in range(cols)]
    if len(tiles) > 1:
        tiles.append(np.asarray(image.resize((size, size), Image.BICUBIC, reducing_gap=None)))
    out = []
    for a in tiles:
        x = (a.astype(np.float64) * (1 / 255)).astype(np.float32)
        x = (x - np.array(IMAGENET_MEAN, dtype=np.float32)) / np.array(IMAGENET_STD, dtype=np.float32)
        out.append(torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1))))
    return torch.stack(out)


@torch.no_grad()
def run_internvl_case(name, out_root):
    torch.manual_seed(zlib.crc32(name.encode()))
    vision_kwargs, text_config = INTERNVL_CASES[name]
    config = transformers.InternVLConfig(vision_config=vision_kwargs, text_config=text_config, image_token_id=IMAGE_TOKEN,
                                         image_seq_length=4, downsample_ratio=0.5, projector_hidden_act="gelu",
                                         vision_feature_layer=-1, vision_feature_select_strategy="default",
                                         tie_word_embeddings=False)
    model, out = random_saved_model(transformers.InternVLForConditionalGeneration, config, out_root, name)
    size, max_tiles = 56, 6
    with open(os.path.join(out, "preprocessor_config.json"), "w") as f:
        json.dump({"image_processor_type": "GotOcr2ImageProcessor", "crop_to_patches": True, "min_patches": 1,
                   "max_patches": max_tiles, "size": {"height": size, "width": size}, "do_resize": True, "resample": 3,
                   "do_rescale": True, "rescale_factor": 1 / 255, "do_normalize": True, "image_mean": IMAGENET_MEAN,
                   "image_std": IMAGENET_STD, "do_convert_rgb": True}, f, indent=1)
    with open(os.path.join(out, "tokenizer_config.json"), "w") as f:
        json.dump({"added_tokens_decoder": {str(IMAGE_START): {"content": "<img>", "special": True},
                                            str(IMAGE_END): {"content": "</img>", "special": True},
                                            str(IMAGE_TOKEN): {"content": "<IMG_CONTEXT>", "special": True}}}, f, indent=1)
    images = [make_image(31, 83, 61), make_image(32, 40, 130), make_image(33, 56, 56)]
    save_images(out, images)
    tiles = [internvl_pixels(im, size, 1, max_tiles) for im in images]
    counts = [4 * t.shape[0] for t in tiles]
    cases = wrapped_cases(counts, 11)
    tensors, records = {}, []
    for i, (ids, which) in enumerate(cases):
        pv = torch.cat([tiles[j] for j in which]) if which else None
        tensors[f"prompt{i}"], greedy = logits_and_greedy(
            lambda seq: model(input_ids=torch.tensor([seq]), pixel_values=pv).logits[0], ids)
        records.append({"prompt_token_ids": ids, "images": which, "greedy_token_ids": greedy})
    for j, t in enumerate(tiles):
        tensors[f"tiles{j}"] = t.contiguous()
        tensors[f"features{j}"] = model.model.get_image_features(pixel_values=t).pooler_output.reshape(-1, text_config["hidden_size"]).float().contiguous()
    save_file(tensors, os.path.join(out, "logits.safetensors"))
    with open(os.path.join(out, "goldens.json"), "w") as f:
        json.dump({"case": name, "architecture": "InternVLForConditionalGeneration", "transformers": transformers.__version__,
                   "torch": torch.__version__, "feature_counts": counts, "image_start": IMAGE_START, "image_end": IMAGE_END,
                   "image_files": [f"images/image{j}.png" for j in range(len(images))], "prompts": records}, f, indent=1)
    try:  # the processor Transformers picks, for the record: its tiles against the PIL ones
        hf = transformers.GotOcr2ImageProcessor(crop_to_patches=True, min_patches=1, max_patches=max_tiles,
                                                size={"height": size, "width": size}, image_mean=IMAGENET_MEAN,
                                                image_std=IMAGENET_STD)
        diffs = [float((hf(images=im, return_tensors="pt")["pixel_values"] - tiles[j]).abs().max()) for j, im in enumerate(images)]
    except Exception as e:  # noqa: BLE001
        diffs = repr(e)
    from safetensors import safe_open
    with safe_open(os.path.join(out, "model.safetensors"), "pt") as f:
        keys = sorted(k for k in f.keys() if "language_model.layers" not in k)
    print(f"{name}: counts {counts}, tiles {[t.shape[0] for t in tiles]}, HF processor max diff {diffs}; keys {keys}")


QWEN2VL_CASES = {  # name -> (model class, vision config)
    "qwen2-vl": ("Qwen2VLForConditionalGeneration", "Qwen2VLConfig",
                 dict(depth=2, embed_dim=32, hidden_size=64, num_heads=4, mlp_ratio=2, patch_size=14, spatial_merge_size=2,
                      temporal_patch_size=2, in_channels=3, hidden_act="quick_gelu")),
    # Qwen2.5-VL: RMSNorm, a gated SiLU MLP, windows of 2 × 2 merged patches in layers 0 and 2, the whole image in layer 1
    "qwen2.5-vl": ("Qwen2_5_VLForConditionalGeneration", "Qwen2_5_VLConfig",
                   dict(depth=3, hidden_size=32, out_hidden_size=64, intermediate_size=48, num_heads=4, patch_size=14,
                        spatial_merge_size=2, temporal_patch_size=2, in_channels=3, hidden_act="silu", window_size=56,
                        fullatt_block_indexes=[1])),
}


def qwen2vl_smart_resize(height, width, factor=28, min_pixels=56 * 56, max_pixels=28 * 28 * 1280):
    """Qwen2-VL's smart_resize (Python's round: half to even)."""
    h_bar = round(height / factor) * factor
    w_bar = round(width / factor) * factor
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt((height * width) / max_pixels)
        h_bar = max(factor, math.floor(height / beta / factor) * factor)
        w_bar = max(factor, math.floor(width / beta / factor) * factor)
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return h_bar, w_bar


def qwen2vl_pixels(image, patch=14, merge=2, temporal=2):
    """Qwen2-VL's preprocessing with PIL: smart_resize, bicubic, 1/255, CLIP's mean and std, then the
    patches in merge-window order, each [channel, temporal copy, patch, patch] flattened."""
    w, h = image.size
    rh, rw = qwen2vl_smart_resize(h, w, patch * merge)
    a = np.asarray(image.resize((rw, rh), Image.BICUBIC, reducing_gap=None))
    x = (a.astype(np.float64) * (1 / 255)).astype(np.float32)
    x = ((x - np.array(MEAN, dtype=np.float32)) / np.array(STD, dtype=np.float32)).transpose(2, 0, 1)
    gh, gw = rh // patch, rw // patch
    p = x.reshape(3, gh // merge, merge, patch, gw // merge, merge, patch).transpose(1, 4, 2, 5, 0, 3, 6)
    p = np.broadcast_to(p[:, :, :, :, :, None], p.shape[:5] + (temporal,) + p.shape[5:])
    return torch.from_numpy(np.ascontiguousarray(p).reshape(gh * gw, 3 * temporal * patch * patch)), (1, gh, gw)


@torch.no_grad()
def run_qwen2vl_case(name, out_root):
    torch.manual_seed(zlib.crc32(name.encode()))
    model_class, config_class, vision_config = QWEN2VL_CASES[name]
    text_type = "qwen2_5_vl_text" if name.startswith("qwen2.5") else "qwen2_vl_text"
    text_config = text(model_type=text_type, rope_parameters=dict(rope_type="default", mrope_section=[4, 2, 2],
                                                                  rope_theta=10000.0))
    config = getattr(transformers, config_class)(text_config=text_config, vision_config=vision_config,
                                                  image_token_id=IMAGE_TOKEN, vision_start_token_id=IMAGE_START,
                                                  vision_end_token_id=IMAGE_END, video_token_id=503, tie_word_embeddings=False)
    model, out = random_saved_model(getattr(transformers, model_class), config, out_root, name)
    with open(os.path.join(out, "preprocessor_config.json"), "w") as f:
        json.dump({"image_processor_type": "Qwen2VLImageProcessor", "min_pixels": 56 * 56, "max_pixels": 28 * 28 * 1280,
                   "patch_size": 14, "merge_size": 2, "temporal_patch_size": 2, "resample": 3, "do_rescale": True,
                   "rescale_factor": 1 / 255, "do_normalize": True, "image_mean": MEAN, "image_std": STD,
                   "do_convert_rgb": True}, f, indent=1)
    images = [make_image(41, 83, 61), make_image(42, 40, 130), make_image(43, 112, 90)]
    if name.startswith("qwen2.5"):
        images[2] = make_image(44, 150, 140)  # 5 × 5 merged patches: windows of 2 × 2, the last row and column partial
    save_images(out, images)
    prepared = [qwen2vl_pixels(im) for im in images]
    counts = [g[1] * g[2] // 4 for _, g in prepared]
    cases = wrapped_cases(counts, 13)
    tensors, records = {}, []
    for i, (ids, which) in enumerate(cases):
        pv = torch.cat([prepared[j][0] for j in which]) if which else None
        thw = torch.tensor([prepared[j][1] for j in which]) if which else None

        def run(seq):
            types = torch.tensor([[1 if t == IMAGE_TOKEN else 0 for t in seq]])
            return model(input_ids=torch.tensor([seq]), pixel_values=pv, image_grid_thw=thw, mm_token_type_ids=types).logits[0]

        tensors[f"prompt{i}"], greedy = logits_and_greedy(run, ids)
        records.append({"prompt_token_ids": ids, "images": which, "greedy_token_ids": greedy})
    for j, (pv, thw) in enumerate(prepared):
        tensors[f"patches{j}"] = pv.contiguous()
        found = model.model.get_image_features(pixel_values=pv, image_grid_thw=torch.tensor([thw])).pooler_output
        tensors[f"features{j}"] = torch.cat(list(found)).float().contiguous()
    save_file(tensors, os.path.join(out, "logits.safetensors"))
    with open(os.path.join(out, "goldens.json"), "w") as f:
        json.dump({"case": name, "architecture": model_class, "transformers": transformers.__version__,
                   "torch": torch.__version__, "feature_counts": counts, "grids": [list(t) for _, t in prepared],
                   "image_files": [f"images/image{j}.png" for j in range(len(images))], "prompts": records}, f, indent=1)
    try:  # the processor Transformers picks, for the record: its patches against the PIL ones
        hf = transformers.Qwen2VLImageProcessor(min_pixels=56 * 56, max_pixels=28 * 28 * 1280, image_mean=MEAN, image_std=STD)
        diffs = [float((hf(images=im, return_tensors="pt")["pixel_values"] - prepared[j][0]).abs().max())
                 for j, im in enumerate(images)]
    except Exception as e:  # noqa: BLE001
        diffs = repr(e)
    print(f"{name}: counts {counts}, grids {[t for _, t in prepared]}, HF processor max diff {diffs}")
    print(json.dumps(json.load(open(os.path.join(out, "config.json")))))


# Phi-3-Vision (microsoft/Phi-3-vision-128k-instruct, Phi-3.5-vision-instruct) is custom code on the Hub
# (image_embedding_phi3_v.py, image_processing_phi3_v.py), not a Transformers class. The reference below
# is Transformers' CLIPVisionModel and Phi3ForCausalLM joined by that code's HD transform, written here
# from its description: the image (transposed when taller than wide) scaled to `scale` crops wide, the most
# whose grid stays within num_crops, padded with white to whole crops in height, a bicubic global view of
# it first; each crop's patch states (the class token's dropped) merged 2 × 2 into one of 4 × width
# channels; the crops' merged maps joined, a learned sub_GN after each row, then glb_GN, then the global
# view's map with its rows' sub_GN; a two-layer GELU projector. Its CLIP is ViT-L/14-336 there and tiny
# here, so the checkpoint's img_processor carries the tower's config (vision_config), which jvllm reads.
PHI3V_CASES = {"phi3v": 4}  # name -> num_crops


def phi3v_pixels(image, num_crops, crop):
    """Phi3VImageProcessor: (crops [1 + rows * cols, 3, crop, crop], the global view first; [height, width] padded)."""
    img = image.convert("RGB")
    transposed = img.size[0] < img.size[1]
    if transposed:
        img = img.transpose(Image.TRANSPOSE)
    width, height = img.size
    ratio = width / height
    scale = 1
    while scale * np.ceil(scale / ratio) <= num_crops:
        scale += 1
    scale -= 1
    new_w = int(scale * crop)
    new_h = int(new_w / ratio)
    img = img.resize((new_w, new_h), Image.BILINEAR)  # torchvision's resize of a PIL image is Pillow's
    target = int(np.ceil(new_h / crop) * crop)
    top = int((target - new_h) / 2)
    canvas = Image.new("RGB", (new_w, target), (255, 255, 255))
    canvas.paste(img, (0, top))
    if transposed:
        canvas = canvas.transpose(Image.TRANSPOSE)
    x = torch.from_numpy(np.asarray(canvas).copy()).permute(2, 0, 1).float().div(255)
    x = (x - torch.tensor(MEAN).view(3, 1, 1)) / torch.tensor(STD).view(3, 1, 1)
    glob = torch.nn.functional.interpolate(x[None], size=(crop, crop), mode="bicubic")[0]
    h, w = x.shape[1:]
    crops = x.reshape(3, h // crop, crop, w // crop, crop).permute(1, 3, 0, 2, 4).reshape(-1, 3, crop, crop)
    return torch.cat([glob[None], crops]), [h, w]


class Phi3VReference(torch.nn.Module):
    def __init__(self, text_config, vision_config):
        super().__init__()
        self.lm = transformers.Phi3ForCausalLM(text_config)
        self.clip = transformers.CLIPVisionModel(vision_config)
        c4 = 4 * vision_config.hidden_size
        self.glb_GN = torch.nn.Parameter(torch.randn(1, 1, c4))
        self.sub_GN = torch.nn.Parameter(torch.randn(1, 1, 1, c4))
        self.img_projection = torch.nn.Sequential(torch.nn.Linear(c4, text_config.hidden_size), torch.nn.GELU(),
                                                  torch.nn.Linear(text_config.hidden_size, text_config.hidden_size))

    def merged(self, states, rows, cols):
        """[rows * cols crops, side * side, C] -> [rows * m, cols * m, 4C], m = side / 2."""
        n, length, c = states.shape
        side = int(math.isqrt(length))
        m = side // 2
        x = states.reshape(n, m, 2, m, 2, c).permute(0, 1, 3, 2, 4, 5).reshape(n, m, m, 4 * c)
        return x.reshape(rows, cols, m, m, 4 * c).permute(0, 2, 1, 3, 4).reshape(rows * m, cols * m, 4 * c)

    def with_newlines(self, grid):
        h = grid.shape[0]
        return torch.cat([grid, self.sub_GN[0].expand(h, 1, -1)], dim=1).reshape(-1, grid.shape[-1])

    def states(self, crops):
        """The tower's patch states at the second-to-last layer, the class token's dropped: [crops, side², C]."""
        return self.clip(crops, output_hidden_states=True).hidden_states[-2][:, 1:]

    def features(self, crops, size, crop, states=None):
        """An image's projected features from its crops (global view first), or from their states."""
        states = self.states(crops) if states is None else states
        rows, cols = size[0] // crop, size[1] // crop
        sub = self.with_newlines(self.merged(states[1:], rows, cols))
        glob = self.with_newlines(self.merged(states[:1], 1, 1))
        return self.img_projection(torch.cat([sub, self.glb_GN[0], glob]))

    def forward(self, ids, features):
        x = self.lm.model.embed_tokens(torch.tensor([ids]))
        at = [i for i, t in enumerate(ids) if t == IMAGE_TOKEN]
        if at:
            x[0, at] = torch.cat(features)
        return self.lm(inputs_embeds=x).logits[0]


def save_phi3v(model, out, with_vision_config, **fields):
    """A Phi3VReference saved as the Hub's Phi-3-Vision checkpoints are: model.safetensors under their names
    (BF16) and config.json with the Phi-3 fields at the top level, img_processor and embd_layer (and `fields`);
    the tower's config in img_processor.vision_config where it is not CLIP ViT-L/14-336 (with_vision_config)."""
    os.makedirs(out, exist_ok=True)
    tensors = {("model." + k if not k.startswith("lm_head") else k): v for k, v in model.lm.state_dict().items()}
    for k, v in model.clip.state_dict().items():  # named as Transformers 4 saved the Hub's checkpoints
        tensors["model.vision_embed_tokens.img_processor." + ("" if k.startswith("vision_model.") else "vision_model.") + k] = v
    tensors["model.vision_embed_tokens.glb_GN"] = model.glb_GN.data
    tensors["model.vision_embed_tokens.sub_GN"] = model.sub_GN.data
    for k, v in model.img_projection.state_dict().items():
        tensors["model.vision_embed_tokens.img_projection." + k] = v
    tensors = {k.replace("model.model.", "model."): v.to(torch.bfloat16).contiguous() for k, v in tensors.items()}
    save_file(tensors, os.path.join(out, "model.safetensors"), metadata={"format": "pt"})
    vision_config = model.clip.config
    image = {"image_dim_out": vision_config.hidden_size, "model_name": "openai/clip-vit-large-patch14-336",
             "name": "clip_vision_model", "num_img_tokens": 144, "layer_idx": -2, "type_feature": "patch"}
    if with_vision_config:
        vision_dict = vision_config.to_dict()
        image["vision_config"] = {k: vision_dict[k] for k in vision()}
    config = model.lm.config.to_dict()
    config.update(architectures=["Phi3VForCausalLM"], model_type="phi3_v", img_processor=image,
                  embd_layer={"embedding_cls": "image", "hd_transform_order": "sub_glb", "projection_cls": "mlp",
                              "use_hd_transform": True, "with_learnable_separator": True}, **fields)
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(config, f, indent=1)


@torch.no_grad()
def run_phi3v_case(name, out_root):
    torch.manual_seed(zlib.crc32(name.encode()))
    num_crops = PHI3V_CASES[name]
    vision_config = transformers.CLIPVisionConfig(**{k: v for k, v in vision().items() if k != "model_type"})
    text_config = transformers.Phi3Config(**{k: v for k, v in text(num_key_value_heads=4).items() if k != "model_type"})
    model = Phi3VReference(text_config, vision_config).eval()
    for p in model.parameters():
        p.add_(torch.randn_like(p) * 0.02)
        p.copy_(p.to(torch.bfloat16).to(torch.float32))
    out = os.path.join(out_root, name)
    save_phi3v(model, out, with_vision_config=True, image_token_id=IMAGE_TOKEN)
    with open(os.path.join(out, "preprocessor_config.json"), "w") as f:
        json.dump({"image_processor_type": "Phi3VImageProcessor", "num_crops": num_crops, "image_mean": MEAN,
                   "image_std": STD, "do_convert_rgb": True, "processor_class": "Phi3VProcessor"}, f, indent=1)
    crop = vision_config.image_size
    # wide (2 x 2 crops), tall (3 x 1, padded left and right), small (scaled up to 2 x 2), very wide (1 x 4),
    # large (scaled down to 2 x 2: Pillow's bilinear filter over more than two pixels)
    images = [make_image(51, 83, 61), make_image(52, 40, 130), make_image(53, 20, 17), make_image(54, 200, 30),
              make_image(55, 300, 200)]
    save_images(out, images)
    prepared = [phi3v_pixels(im, num_crops, crop) for im in images]
    features = [model.features(pv, size, crop) for pv, size in prepared]
    counts = [f.shape[0] for f in features]
    cases = [([t for t in ids if t not in (IMAGE_START, IMAGE_END)], which) for ids, which in wrapped_cases(counts, 17)]
    cases.append(([1] + [IMAGE_TOKEN] * counts[3] + [5, 6, 7], [3]))
    cases.append(([1, 8, 9] + [IMAGE_TOKEN] * counts[4] + [10], [4]))
    logits, records = {}, []
    for i, (ids, which) in enumerate(cases):
        feats = [features[j] for j in which]
        logits[f"prompt{i}"], greedy = logits_and_greedy(lambda seq: model(seq, feats), ids)
        records.append({"prompt_token_ids": ids, "images": which, "greedy_token_ids": greedy})
    for j, (pv, size) in enumerate(prepared):
        logits[f"crops{j}"] = pv.contiguous()
        logits[f"features{j}"] = features[j].float().contiguous()
    save_file(logits, os.path.join(out, "logits.safetensors"))
    with open(os.path.join(out, "goldens.json"), "w") as f:
        json.dump({"case": name, "architecture": "Phi3VForCausalLM", "transformers": transformers.__version__,
                   "torch": torch.__version__, "feature_counts": counts, "sizes": [s for _, s in prepared],
                   "image_files": [f"images/image{j}.png" for j in range(len(images))], "prompts": records}, f, indent=1)
    print(f"{name}: counts {counts}, padded sizes {[s for _, s in prepared]}, crops {[pv.shape[0] for pv, _ in prepared]}")


def image_processor(size):
    kwargs = dict(size={"shortest_edge": size}, crop_size={"height": size, "width": size}, do_center_crop=True,
                  do_normalize=True, image_mean=MEAN, image_std=STD, do_rescale=True, rescale_factor=1 / 255,
                  resample=3, do_convert_rgb=True)
    return transformers.CLIPImageProcessor(**kwargs)


def random_saved_model(model_class, config, out_root, name):
    """A random float32 model whose every parameter is perturbed and holds bfloat16 values, saved
    (as BF16) under out_root/name."""
    model = model_class(config).to(torch.float32).eval()
    for p in model.parameters():
        p.add_(torch.randn_like(p) * 0.02)
        p.copy_(p.to(torch.bfloat16).to(torch.float32))
    out = os.path.join(out_root, name)
    model.save_pretrained(out)
    from make_goldens import store_as_bf16
    store_as_bf16(out)
    return model, out


def saved_model(model_class, config, out_root, name):
    """random_saved_model with its CLIP image processor's config."""
    model, out = random_saved_model(model_class, config, out_root, name)
    image_processor(config.vision_config.image_size).save_pretrained(out)
    return model, out


@torch.no_grad()
def run_case(name, out_root):
    torch.manual_seed(zlib.crc32(name.encode()))
    config = transformers.LlavaConfig(**CASES[name])
    model, out = saved_model(transformers.LlavaForConditionalGeneration, config, out_root, name)
    size = config.vision_config.image_size
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
        tensors[f"prompt{i}"], greedy = logits_and_greedy(
            lambda seq: model(input_ids=torch.tensor([seq]), pixel_values=pv).logits[0], ids)
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
    ap.add_argument("--only", nargs="*")
    args = ap.parse_args()
    torch.use_deterministic_algorithms(True)
    import sys
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    # Each family's cases and how one is made, in this order.
    families = [(CASES, run_case), (NEXT_CASES, run_next_case), (INTERNVL_CASES, run_internvl_case),
                (QWEN2VL_CASES, run_qwen2vl_case), (PHI3V_CASES, run_phi3v_case)]
    wanted = set(args.only or ["preprocessing", *(name for cases, _ in families for name in cases)])
    if "preprocessing" in wanted:
        preprocessing(args.out)
    for cases, run in families:
        for name in cases:
            if name in wanted:
                run(name, args.out)

if __name__ == "__main__":
    main()
