"""A Phi-3-Vision-shaped checkpoint with random bf16 weights (CLIP ViT-L/14 at 336 pixels, built in as the
Hub's config names it; Phi-3-mini's language model, without LongRoPE, which changes no speed), saved as the
Hub's checkpoints are (tools/reference/make_vision_goldens.py's save_phi3v), with num_crops 16, for
VisionBenchmark and tools/gpu/phi3v_hf_baseline.py. Run on the GPU machine: python3 tools/gpu/make_phi3v_checkpoint.py DIR"""
import json
import os
import sys

import torch
import transformers

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "reference"))
import make_vision_goldens as goldens  # noqa: E402


def configs():
    vision = transformers.CLIPVisionConfig(hidden_size=1024, intermediate_size=4096, num_hidden_layers=24, num_attention_heads=16,
                                           image_size=336, patch_size=14, projection_dim=768, hidden_act="quick_gelu",
                                           layer_norm_eps=1e-5)
    text = transformers.Phi3Config(vocab_size=32064, hidden_size=3072, intermediate_size=8192, num_hidden_layers=32,
                                   num_attention_heads=32, num_key_value_heads=32, max_position_embeddings=4096,
                                   rms_norm_eps=1e-5, bos_token_id=1, eos_token_id=32000, pad_token_id=32000,
                                   tie_word_embeddings=False)
    return text, vision


def main():
    out = sys.argv[1]
    if os.path.isfile(os.path.join(out, "preprocessor_config.json")):  # the last file written: a whole checkpoint
        print(out)
        return
    torch.manual_seed(0)
    text, vision = configs()
    with torch.device("cuda"):
        model = goldens.Phi3VReference(text, vision).to(torch.bfloat16)
    # VisionBenchmark reads the placeholder from config.json
    goldens.save_phi3v(model, out, with_vision_config=False, image_token_id=32044, dtype="bfloat16")
    with open(os.path.join(out, "preprocessor_config.json"), "w") as f:
        json.dump({"image_processor_type": "Phi3VImageProcessor", "num_crops": 16, "image_mean": goldens.MEAN,
                   "image_std": goldens.STD, "do_convert_rgb": True}, f, indent=1)
    print(out)


if __name__ == "__main__":
    main()
