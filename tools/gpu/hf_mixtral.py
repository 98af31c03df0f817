"""HF Transformers beside jvllm on a random-weight Mixtral-8x7B-shaped model (issue 7), in the form of
../shared/anchors/gpu_hf_baseline.py: one JSON line per measurement. The model is built on the GPU
in bf16 with random weights (no checkpoint on disk). --layers cuts the depth (the full 32 layers
need about 94 GB: an H200; with fewer, every number is for that depth, and jvllm must be run on
the same shape).

    python3 tools/gpu/hf_mixtral.py --layers 8 --offline 64
"""
import argparse, json, time
import torch
from transformers import MixtralConfig, MixtralForCausalLM

ap = argparse.ArgumentParser()
ap.add_argument("--layers", type=int, default=32)
ap.add_argument("--offline", type=int, nargs="*", default=[64])
args = ap.parse_args()
torch.manual_seed(0)
dev = "cuda"

def emit(**kw):
    print(json.dumps(kw), flush=True)

cfg = MixtralConfig(hidden_size=4096, intermediate_size=14336, num_hidden_layers=args.layers,
                    num_attention_heads=32, num_key_value_heads=8, vocab_size=32000, num_local_experts=8,
                    num_experts_per_tok=2, max_position_embeddings=4096, rope_theta=1e6, sliding_window=None,
                    tie_word_embeddings=False, bos_token_id=1, eos_token_id=None, pad_token_id=0)
t = time.perf_counter()
torch.set_default_dtype(torch.bfloat16)
with torch.device(dev):
    model = MixtralForCausalLM(cfg)
model.eval()
torch.set_default_dtype(torch.float32)
nbytes = sum(p.numel() * p.element_size() for p in model.parameters())
emit(what="model", impl="hf-mixtral", layers=args.layers, params_b=round(sum(p.numel() for p in model.parameters()) / 1e9, 3),
     weight_gb=round(nbytes / 1e9, 2), build_s=round(time.perf_counter() - t, 1))
gc = model.generation_config
gc.eos_token_id = None; gc.pad_token_id = 0; gc.do_sample = False

def gen(ids, n):
    torch.cuda.synchronize(); t = time.perf_counter()
    with torch.inference_mode():
        out = model.generate(ids, max_new_tokens=n, min_new_tokens=n, do_sample=False)
    torch.cuda.synchronize()
    assert out.shape[1] == ids.shape[1] + n, out.shape
    return time.perf_counter() - t

ids = torch.randint(1000, 31000, (1, 512), device=dev)
gen(ids, 8)
t1 = gen(ids, 1); tn = gen(ids, 129)
emit(what="decode_bs1", impl="hf-eager", prompt=512, new=128, ttft_ms=round(t1 * 1e3, 1),
     decode_tok_s=round(128 / (tn - t1), 1), tpot_ms=round((tn - t1) / 128 * 1e3, 2))
for n in args.offline:
    try:
        ids = torch.randint(1000, 31000, (n, 512), device=dev)
        t = gen(ids, 128)
        emit(what="offline_throughput", impl="hf-eager", prompts=n, input=512, output=128, seconds=round(t, 2),
             output_tok_s=round(n * 128 / t, 1), total_tok_s=round(n * 640 / t, 1),
             peak_mem_gb=round(torch.cuda.max_memory_allocated() / 1e9, 1))
    except Exception as e:
        emit(what="offline_throughput", impl="hf-eager", prompts=n, error=repr(e)[:300])
    torch.cuda.empty_cache()
