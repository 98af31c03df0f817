"""A BART-large-shaped checkpoint with random bf16 weights (12 + 12 layers, d_model 1024, 406M parameters),
or with --family t5 a Flan-T5-base-shaped one (12 + 12 layers, d_model 768, 12 heads of 64, gated GELU,
248M parameters), for EncoderDecoderBenchmark, and HF Transformers' eager generate on the same workload
beside it: one request alone, then N requests batched, each with an encoder prompt of INPUT random tokens
and OUTPUT new tokens (EOS ignored through min_new_tokens). Prints JSON lines. Run on the GPU machine:
    python3 tools/gpu/encoder_decoder_bench.py DIR [requests 64] [input 512] [output 128] [--make-only] [--family t5]
"""
import json
import os
import sys
import time

import torch
import transformers


T5 = "--family" in sys.argv[:-1] and sys.argv[sys.argv.index("--family") + 1] == "t5"


def model_class():
    return transformers.T5ForConditionalGeneration if T5 else transformers.BartForConditionalGeneration


def config():
    if T5:
        return transformers.T5Config(vocab_size=32128, d_model=768, d_kv=64, d_ff=2048, num_layers=12,
                                     num_decoder_layers=12, num_heads=12, feed_forward_proj="gated-gelu",
                                     relative_attention_num_buckets=32, relative_attention_max_distance=128,
                                     tie_word_embeddings=False, decoder_start_token_id=0, pad_token_id=0,
                                     eos_token_id=1)
    return transformers.BartConfig(vocab_size=50265, d_model=1024, encoder_layers=12, decoder_layers=12,
                                   encoder_attention_heads=16, decoder_attention_heads=16, encoder_ffn_dim=4096,
                                   decoder_ffn_dim=4096, max_position_embeddings=1024, activation_function="gelu",
                                   scale_embedding=False, pad_token_id=1, bos_token_id=0, eos_token_id=2,
                                   decoder_start_token_id=2, forced_bos_token_id=None, forced_eos_token_id=None)


def make(out):
    if os.path.isfile(os.path.join(out, "model.safetensors")):
        return
    torch.manual_seed(0)
    with torch.device("cuda"):
        model = model_class()(config()).to(torch.bfloat16)
    model.save_pretrained(out, safe_serialization=True)


def emit(**fields):
    fields["source"] = "hf"
    print(json.dumps(fields), flush=True)


def main():
    out = sys.argv[1]
    args = [a for i, a in enumerate(sys.argv[2:], 2) if not a.startswith("--") and sys.argv[i - 1] != "--family"]
    requests = int(args[0]) if len(args) > 0 else 64
    length = int(args[1]) if len(args) > 1 else 512
    output = int(args[2]) if len(args) > 2 else 128
    make(out)
    if "--make-only" in sys.argv:
        return
    model = model_class().from_pretrained(out, dtype=torch.bfloat16).cuda().eval()
    gen = dict(max_new_tokens=output, min_new_tokens=output, do_sample=False, num_beams=1, no_repeat_ngram_size=0,
               early_stopping=False)
    if not T5:
        gen.update(forced_bos_token_id=None, forced_eos_token_id=None)
    top = 32000 if T5 else 50000
    g = torch.Generator().manual_seed(1)

    def batch(n):
        return torch.randint(3, top, (n, length), generator=g).cuda()

    with torch.no_grad():
        for _ in range(2):
            model.generate(batch(1), **gen)
        torch.cuda.synchronize()
        t = time.perf_counter()
        model.generate(batch(1), **gen)
        torch.cuda.synchronize()
        alone = time.perf_counter() - t
        emit(what="request_alone", seconds=round(alone, 3), output_tokens=output, tok_s=round(output / alone, 1))
        ids = batch(requests)
        model.generate(ids[:2], **gen)
        torch.cuda.synchronize()
        t = time.perf_counter()
        result = model.generate(ids, **gen)
        torch.cuda.synchronize()
        elapsed = time.perf_counter() - t
        generated = (result.shape[1] - 1) * requests
        emit(what="requests_batched", requests=requests, seconds=round(elapsed, 3),
             output_tok_s=round(generated / elapsed), input_tokens_each=length)


if __name__ == "__main__":
    main()
