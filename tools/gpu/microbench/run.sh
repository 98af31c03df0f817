#!/usr/bin/env bash
# Run ON THE GPU MACHINE from the repository root (needs nvcc there, no Java): builds microbenchmarks
# against the kernels' own sources and prints their JSON lines.
#   mlp   a Llama-3-8B layer's MLP half at batch 1: jvllm's five launches against one persistent
#         cooperative kernel with grid barriers, with 0, 64 and 256 KB a block asked of L2 before
#         each barrier (mlp_chain.cu's header).
#   decode paged_decode alone at batches 1, 64 and 256 (context 577), beside a plain read of the
#         same bytes; once for each -D set in DECODE_VARIANTS (';'-separated, '' the defaults), e.g.
#         DECODE_VARIANTS=';-DDECODE_EARLY_TILE=0;-DDECODE_MIN_BLOCKS=3'.
#   decode-sweep paged_decode at batch 64 over contexts 65-1009: its fixed cost and its per-key cost.
#   mlp-pdl each MLP-half launch alone inside a graph, and the five as programmatic dependent launches
#         with the gemv kernels' first weight loads before and after their wait (GEMV_PRELOAD); beside
#         them three launches with each norm done by the last block of the product before it
#         (programmatic_3_launches_fused_norms, and a check_fused_norms line against the five).
#   cublas-splitk cuBLAS's batch-64 products of a Llama-3-8B layer as split-K strided-batched
#         products plus a sum of the partials, against the plain product (cublas_splitk.cu's header).
#   cublas-pdl whether cuBLAS's batch-64 products wait on the kernel ahead when a graph edge into
#         them is made programmatic, and what such edges save over 16 layers (cublas_pdl.cu's header).
# Usage: bash tools/gpu/microbench/run.sh mlp|mlp-pdl|decode|decode-sweep|cublas-splitk|cublas-pdl ...
set -euo pipefail
root=$(cd "$(dirname "$0")/../../.." && pwd)
cd "$root"
src=kernels-native/src/main/resources/dev/jvllm/cuda
nvcc=$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)
build() { "$nvcc" -arch=sm_90 -O3 -std=c++17 -DJV_ACT_TYPE=2 -I "$src" "$@"; }
for what in "$@"; do
  case $what in
    mlp)
      build tools/gpu/microbench/mlp_chain.cu -o /tmp/mlp_chain
      for kb in 0 64 256; do /tmp/mlp_chain "$kb" 8 20; done ;;
    mlp-pdl)
      # In-graph cost of each launch alone, and the five as programmatic dependent launches, with the
      # gemv kernels' first weight loads before their wait (GEMV_PRELOAD=1) and after it (0).
      for preload in 1 0; do
        build -DGEMV_PRELOAD=$preload tools/gpu/microbench/mlp_chain.cu -o /tmp/mlp_chain
        /tmp/mlp_chain 0 8 20 pdl | python3 -c 'import json,sys
for l in sys.stdin: d=json.loads(l); d["gemv_preload"]=int(sys.argv[1]); print(json.dumps(d))' "$preload"
      done ;;
    decode)
      IFS=';' read -r -a variants <<< "${DECODE_VARIANTS:-}"
      [[ ${#variants[@]} -eq 0 ]] && variants=("")
      for defines in "${variants[@]}"; do
        # shellcheck disable=SC2086
        build $defines tools/gpu/microbench/decode_bench.cu -o /tmp/decode_bench
        for batch in 1 64 256; do
          /tmp/decode_bench "$batch" 577 50 1 | python3 -c 'import json,sys
for l in sys.stdin: d=json.loads(l); d["defines"]=sys.argv[1]; print(json.dumps(d))' "$defines"
        done
      done ;;
    decode-sweep)
      # time(context) at batch 64: the intercept is what one launch costs beyond its bytes.
      build tools/gpu/microbench/decode_bench.cu -o /tmp/decode_bench
      for context in 65 161 289 577 865 1009; do /tmp/decode_bench 64 "$context" 50 1; done
      # Two near-equal partitions a (token, KV head) at context 577: two waves instead of one.
      /tmp/decode_bench 64 577 50 1 304 ;;
    cublas-splitk)
      build tools/gpu/microbench/cublas_splitk.cu -lcublas -o /tmp/cublas_splitk
      /tmp/cublas_splitk 64 8 20
      /tmp/cublas_splitk 16 8 20 ;;
    cublas-pdl)
      build tools/gpu/microbench/cublas_pdl.cu -lcublas -o /tmp/cublas_pdl
      /tmp/cublas_pdl 16 20 ;;
    *) echo "unknown microbenchmark $what" >&2; exit 1 ;;
  esac
done
