"""HF Transformers (eager) on VisionBenchmark's workload, same checkpoint and card: one request with
a 640x480 random image alone (first token, then 128 tokens), then N requests batched in one generate.
Prints JSON lines. Usage: python3 tools/gpu/vision_hf_baseline.py DIR [N]"""
import json
import sys
import time

import numpy as np
import torch
import transformers
from PIL import Image


def main():
    path, n, output = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 64, 128
    model = transformers.LlavaForConditionalGeneration.from_pretrained(path, dtype=torch.bfloat16).cuda().eval()
    processor = transformers.CLIPImageProcessor.from_pretrained(path)
    rng = np.random.default_rng(7)
    question = rng.integers(100, 30000, 24).tolist()
    ids = [1] + [32000] * 576 + [13] + question

    def images(count):
        pics = [Image.fromarray(rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)) for _ in range(count)]
        return processor(images=pics, return_tensors="pt")["pixel_values"].to("cuda", torch.bfloat16)

    def run(count, tokens):
        torch.cuda.synchronize()
        start = time.perf_counter()
        pixels = images(count)
        input_ids = torch.tensor([ids] * count, device="cuda")
        model.generate(input_ids=input_ids, pixel_values=pixels, max_new_tokens=tokens, min_new_tokens=tokens,
                       do_sample=False)
        torch.cuda.synchronize()
        return time.perf_counter() - start

    measure(run, n, output, "hf-eager")


def measure(run, n, output, source):
    """VisionBenchmark's three measures with run(count, tokens) (seconds for count requests of tokens each),
    after two warm-up runs; prints them as JSON lines."""
    with torch.no_grad():
        for _ in range(2):
            run(1, 8)
        first = run(1, 1)
        alone = run(1, output)
        batched = run(n, output)
    for line in [dict(what="image_request_first_token", seconds=round(first, 3)),
                 dict(what="image_request_alone", seconds=round(alone, 3), tok_s=round(output / alone, 1)),
                 dict(what="image_requests_batched", requests=n, seconds=round(batched, 3),
                      requests_s=round(n / batched, 2), output_tok_s=round(n * output / batched))]:
        line.update(source=source, transformers=transformers.__version__)
        print(json.dumps(line), flush=True)

if __name__ == "__main__":
    main()
