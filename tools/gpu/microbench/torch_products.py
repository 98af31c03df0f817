"""A probe for issue 4's batch-64 goal (run ON THE GPU MACHINE: python3 tools/gpu/microbench/torch_products.py).

Is there a product kernel faster than cuBLAS's at 64 rows for a Llama-3-8B layer's weights? For each
product (o, q/k/v, down, gate/up) it times, inside a CUDA graph over LAYERS copies of the weight (so
that L2 holds none of them, as in a decode step), F.linear through PyTorch's cuBLAS path and the
kernel torch.compile(mode="max-autotune-no-cudagraphs") picks after benchmarking its Triton
templates against cuBLAS. Also cuBLAS over the weight stored [K, N] (NN) and over [N, K] with the
operands' roles swapped (W @ xT). One JSON line per (product, form): microseconds a product, TB/s of weights.
"""
import json, os, sys, time
import torch
import torch.nn.functional as F

ROWS = int(os.environ.get("ROWS", "64"))
LAYERS = int(os.environ.get("LAYERS", "8"))
REPEATS = 20
SHAPES = [("o", 4096, 4096), ("qkv", 6144, 4096), ("down", 4096, 14336), ("gate_up", 28672, 4096)]
torch.manual_seed(0)
dev = "cuda"

def graph_time(fn, weights, x):
    outs = [None] * len(weights)
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        for _ in range(3):
            for i, w in enumerate(weights): outs[i] = fn(x, w)
    torch.cuda.current_stream().wait_stream(s)
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        for i, w in enumerate(weights): outs[i] = fn(x, w)
    for _ in range(3): g.replay()
    times = []
    for _ in range(REPEATS):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record(); g.replay(); b.record(); b.synchronize()
        times.append(a.elapsed_time(b) * 1e3 / len(weights))
    times.sort()
    return times[len(times) // 2], outs[0]

def emit(**kw): print(json.dumps(kw), flush=True)

import torch._inductor.config as ic
ic.max_autotune_gemm_backends = "TRITON,ATEN"
autotune = os.environ.get("AUTOTUNE", "1") != "0"
for name, n, k in SHAPES:
    weights = [torch.randn(n, k, device=dev, dtype=torch.bfloat16) * 0.02 for _ in range(LAYERS)]
    x = torch.randn(ROWS, k, device=dev, dtype=torch.bfloat16)
    gb = n * k * 2 / 1e9

    def report(form, us, out=None, **extra):
        """One line for a form: its time a product, the weights' TB/s, and its output against F.linear's."""
        if out is not None:
            extra["max_difference"] = (out.float() - ref.float()).abs().max().item()
        emit(what="torch_products", device=torch.cuda.get_device_name(), product=name, rows=ROWS, n=n, k=k,
             form=form, us=round(us, 2), tb_s=round(gb / us * 1e3, 3), **extra)

    us, ref = graph_time(F.linear, weights, x)
    report("F.linear (cuBLAS)", us)
    # The same product over the weight stored [K, N] (cuBLAS's NN case instead of TN).
    transposed = [w.t().contiguous() for w in weights]
    us3, out3 = graph_time(torch.matmul, transposed, x)
    report("x @ W stored [K, N] (cuBLAS NN)", us3, out3)
    del transposed
    # The same weights [N, K] with the operands' roles swapped: W @ xᵀ, the output [N, T] (the
    # consumer would read it transposed). cuBLAS then sees m = tokens, n = out features.
    us4, out4 = graph_time(lambda a, w: torch.matmul(w, a.t()), weights, x)
    report("W @ xT, output [N, T] (cuBLAS, roles swapped)", us4, out4.t())
    if autotune:
        torch._dynamo.reset()
        t0 = time.time()
        compiled = torch.compile(lambda a, w: F.linear(a, w), mode="max-autotune-no-cudagraphs", dynamic=False)
        try:
            us2, out = graph_time(compiled, weights, x)
            report("max-autotune", us2, out, tune_s=round(time.time() - t0, 1))
        except Exception as e:
            emit(what="torch_products", product=name, form="max-autotune", error=repr(e)[:300])
    del weights
    torch.cuda.empty_cache()
