#!/usr/bin/env bash
# Run ON THE GPU MACHINE from the repository root (needs nvcc there, no Java): builds microbenchmarks
# against the kernels' own sources and prints their JSON lines.
#   mlp   a Llama-3-8B layer's MLP half at batch 1: jvllm's five launches against one persistent
#         cooperative kernel with grid barriers, with 0, 64 and 256 KB a block asked of L2 before
#         each barrier (mlp_chain.cu's header).
#   decode paged_decode alone at batches 1, 64 and 256 (context 577), beside a plain read of the
#         same bytes and gather_read lines (its loads alone, in its cache layout and grid order and
#         in others); once for each -D set in DECODE_VARIANTS (';'-separated, '' the defaults), e.g.
#         DECODE_VARIANTS=';-DDECODE_EARLY_TILE=0;-DDECODE_MIN_BLOCKS=3'.
#   decode-sweep paged_decode at batch 64 over contexts 65-1009: its fixed cost and its per-key cost.
#   mlp-pdl each MLP-half launch alone inside a graph, and the five as programmatic dependent launches
#         with the gemv kernels' first weight loads before and after their wait (GEMV_PRELOAD); beside
#         them three launches with each norm done by the last block of the product before it
#         (programmatic_3_launches_fused_norms, and a check_fused_norms line against the five).
#   decode-long paged_decode at batch 1 over contexts up to 16k (the graph's table spans): the host's
#         rules, other partition sizes, the merge through global memory (decode_bench's 5th-7th arguments).
#   decode-rules paged_decode at batch 1 in table spans of 2k-16k positions over partition sizes and
#         cluster widths, to set the host's rules for long contexts.
#   mlp-fused a Llama-3-8B layer's MLP at batch 1 as one launch (gate/up and down split over K,
#         partial sums added in float32) beside gemv_gated + gemv_rows + add_rms_norm, alone and after
#         the o projection and its norm; once for each -D set in FUSED_VARIANTS (';'-separated, ''
#         the defaults), e.g. FUSED_VARIANTS=';-DFUSED_UNROLL=4' (mlp_fused.cu's header).
#   cublaslt-sweep every cuBLASLt algorithm, tile, stage count and split of K for a
#         Llama-3-8B layer's products at 64 and 256 rows, against cublasGemmEx's default and the
#         heuristic's best of 16 (cublaslt_sweep.cu's header).
#   cublas-splitk cuBLAS's batch-64 products of a Llama-3-8B layer as split-K strided-batched
#         products plus a sum of the partials, against the plain product (cublas_splitk.cu's header).
#   cublas-pdl whether cuBLAS's batch-64 products wait on the kernel ahead when a graph edge into
#         them is made programmatic, and what such edges save over 16 layers (cublas_pdl.cu's header).
#   o-staged the o projection at batch 1 after paged_decode, as gemv_rows and as gemv_rows_staged (its
#         rows copied into shared memory and registers before it waits on attention), once for each -D
#         set in STAGED_VARIANTS (';'-separated, '' the defaults), e.g. STAGED_VARIANTS=';-DSTAGED_WARPS=12'.
#   int4  the 4-bit products alone (gemm_int4_N below 16 rows, gemm_int4_wide and its reduce from 16) on a
#         Llama-3-8B layer's shapes at INT4_ROWS rows of x (default 1,2,8,16,32,64), L2 evicted before each
#         run; once for each -D set in INT4_VARIANTS (';'-separated, '' the defaults), e.g.
#         INT4_VARIANTS=';-DINT4_ZERO_BY_MMA=1' (int4_bench.cu's header).
# Usage: bash tools/gpu/microbench/run.sh int4|o-staged|mlp|mlp-pdl|mlp-fused|cublaslt-sweep|decode|decode-sweep|decode-long|decode-rules|cublas-splitk|cublas-pdl ...
set -euo pipefail
root=$(cd "$(dirname "$0")/../../.." && pwd)
cd "$root"
src=kernels-native/src/main/resources/dev/jvllm/cuda
nvcc=$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)
build() { "$nvcc" -arch=sm_90 -O3 -std=c++17 -DJV_ACT_TYPE=2 -I "$src" "$@"; }
# Copies JSON lines from stdin to stdout with KEY set to VALUE (a number where the third argument is int).
tag() { python3 -c 'import json,sys
value = int(sys.argv[2]) if sys.argv[3:] == ["int"] else sys.argv[2]
for l in sys.stdin: d=json.loads(l); d[sys.argv[1]]=value; print(json.dumps(d))' "$@"; }
# The -D sets of DECODE_VARIANTS (';'-separated, '' the defaults) into the array variants.
decode_variants() { sets_of "${DECODE_VARIANTS:-}"; }
# The -D sets of $1 (';'-separated, '' the defaults) into the array variants.
sets_of() { IFS=';' read -r -a variants <<< "$1"; [[ ${#variants[@]} -eq 0 ]] && variants=(""); return 0; }
# Builds SOURCE once for each -D set of SETS into BINARY_0, BINARY_1, ... side by side (nvcc takes
# longer than a variant's runs), the sets left in the array variants; a failed build stops the run.
# Usage: build_variants SETS SOURCE BINARY
build_variants() {
  sets_of "$1"
  local builds=() i pid
  for i in "${!variants[@]}"; do
    # shellcheck disable=SC2086
    build ${variants[$i]} "$2" -o "$3_$i" &
    builds+=($!)
  done
  for pid in "${builds[@]}"; do wait "$pid"; done
}
for what in "$@"; do
  case $what in
    mlp)
      build tools/gpu/microbench/mlp_chain.cu -o /tmp/mlp_chain
      for kb in 0 64 256; do /tmp/mlp_chain "$kb" 8 20; done ;;
    int4)
      build_variants "${INT4_VARIANTS:-}" tools/gpu/microbench/int4_bench.cu /tmp/int4_bench
      for i in "${!variants[@]}"; do "/tmp/int4_bench_$i" 30 "${INT4_ROWS:-1,2,8,16,32,64}" | tag defines "${variants[$i]}"; done ;;
    o-staged)
      build_variants "${STAGED_VARIANTS:-}" tools/gpu/microbench/o_staged.cu /tmp/o_staged
      for i in "${!variants[@]}"; do "/tmp/o_staged_$i" 16 30 577 "24,20,16,8" | tag defines "${variants[$i]}"; done ;;
    mlp-pdl)
      # In-graph cost of each launch alone, and the five as programmatic dependent launches, with the
      # gemv kernels' first weight loads before their wait (GEMV_PRELOAD=1) and after it (0).
      for preload in 1 0; do
        build -DGEMV_PRELOAD=$preload tools/gpu/microbench/mlp_chain.cu -o /tmp/mlp_chain
        /tmp/mlp_chain 0 8 20 pdl | tag gemv_preload "$preload" int
      done ;;
    decode)
      build_variants "${DECODE_VARIANTS:-}" tools/gpu/microbench/decode_bench.cu /tmp/decode_bench
      for i in "${!variants[@]}"; do
        for batch in 1 64 256; do
          "/tmp/decode_bench_$i" "$batch" 577 50 1 | tag defines "${variants[$i]}"
        done
      done ;;
    decode-sweep)
      # time(context) at batch 64: the intercept is what one launch costs beyond its bytes.
      build tools/gpu/microbench/decode_bench.cu -o /tmp/decode_bench
      for context in 65 161 289 577 865 1009; do /tmp/decode_bench 64 "$context" 50 1; done
      # Two near-equal partitions a (token, KV head) at context 577: two waves instead of one.
      /tmp/decode_bench 64 577 50 1 304 ;;
    decode-long)
      # Batch 1 (and 4) at long contexts, in the graph's table spans (a power of two of 16-slot
      # blocks): the host's partition and cluster rules, other partition sizes, the merge through
      # global memory (cluster 1); once for each -D set in DECODE_VARIANTS, as for decode.
      decode_variants
      for defines in "${variants[@]}"; do
        # shellcheck disable=SC2086
        build $defines tools/gpu/microbench/decode_bench.cu -o /tmp/decode_bench
        {
          for cs in 577:1024 2176:4096 8128:16384 16128:16384; do /tmp/decode_bench 1 "${cs%:*}" 50 1 0 0 "${cs#*:}"; done
          for pc in 256:1 512:1 1024:1 1024:16; do /tmp/decode_bench 1 16128 50 1 "${pc%:*}" "${pc#*:}" 16384; done
          for pc in 256:1 512:1 1024:16; do /tmp/decode_bench 1 8128 50 1 "${pc%:*}" "${pc#*:}" 16384; done
          /tmp/decode_bench 4 16128 50 1 0 0 16384
          /tmp/decode_bench 64 577 50 1
        } | tag defines "$defines"
      done ;;
    decode-rules)
      # Batch 1 in each graph table span from 2k to 16k positions, near both ends of the contexts a
      # span serves (just over half, and full): the host's rule, then partitions of 64-1024 positions
      # merged through global memory, and the one cluster of 16 partitions that covers the span.
      build tools/gpu/microbench/decode_bench.cu -o /tmp/decode_bench
      for span in 2048 4096 8192 16384; do
        for context in $((span / 2 + 64)) $((span - 64)); do
          /tmp/decode_bench 1 $context 50 1 0 0 $span
          for partition in 64 128 256 512 1024; do
            (( span / partition <= 64 && partition < span )) && /tmp/decode_bench 1 $context 50 1 $partition 1 $span
          done
          /tmp/decode_bench 1 $context 50 1 $((span / 16)) 16 $span
        done
      done ;;
    mlp-fused)
      build_variants "${FUSED_VARIANTS:-}" tools/gpu/microbench/mlp_fused.cu /tmp/mlp_fused
      for i in "${!variants[@]}"; do "/tmp/mlp_fused_$i" 16 20 | tag defines "${variants[$i]}"; done ;;
    cublaslt-sweep)
      build tools/gpu/microbench/cublaslt_sweep.cu -lcublasLt -lcublas -o /tmp/cublaslt_sweep
      /tmp/cublaslt_sweep "${SWEEP_ROWS:-64,256}" 8 "${SWEEP_MAX:-4000}" "${SWEEP_PER_ID:-600}" ;;
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
