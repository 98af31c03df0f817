"""A LLaVA-1.5-7B-shaped checkpoint with random bf16 weights (CLIP ViT-L/14 at 336 pixels, Llama-2-7B),
for VisionBenchmark and the HF baseline beside it; weights' values do not change the speed with EOS
ignored. Run on the GPU machine: python3 tools/gpu/make_llava_checkpoint.py DIR"""
import os
import sys

import torch
import transformers


def config():
    return transformers.LlavaConfig(
        vision_config=dict(model_type="clip_vision_model", hidden_size=1024, intermediate_size=4096,
                           num_hidden_layers=24, num_attention_heads=16, image_size=336, patch_size=14,
                           projection_dim=768, hidden_act="quick_gelu", layer_norm_eps=1e-5),
        text_config=dict(model_type="llama", vocab_size=32064, hidden_size=4096, intermediate_size=11008,
                         num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=32,
                         max_position_embeddings=4096, rms_norm_eps=1e-5, bos_token_id=1, eos_token_id=2),
        image_token_id=32000, projector_hidden_act="gelu", vision_feature_layer=-2,
        vision_feature_select_strategy="default", image_seq_length=576)


def main():
    out = sys.argv[1]
    if os.path.isfile(os.path.join(out, "model.safetensors.index.json")) or os.path.isfile(os.path.join(out, "model.safetensors")):
        print(out)
        return
    torch.manual_seed(0)
    with torch.device("cuda"):
        model = transformers.LlavaForConditionalGeneration(config()).to(torch.bfloat16)
    model.config.dtype = torch.bfloat16
    model.save_pretrained(out, max_shard_size="20GB")
    transformers.CLIPImageProcessor(size={"shortest_edge": 336}, crop_size={"height": 336, "width": 336}).save_pretrained(out)
    print(out)


if __name__ == "__main__":
    main()
