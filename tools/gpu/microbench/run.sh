#!/usr/bin/env bash
# Run ON THE GPU MACHINE from the repository root (needs nvcc there, no Java): builds the
# microbenchmarks against the kernels' own sources and prints their JSON lines.
#   mlp_chain: a Llama-3-8B layer's MLP half at batch 1, jvllm's five launches against one
#   persistent cooperative kernel with grid barriers, with 0, 64 and 256 KB a block asked of L2
#   before each barrier (see the source's header).
# Usage: bash tools/gpu/microbench/run.sh [layers, default 8]
set -euo pipefail
root=$(cd "$(dirname "$0")/../../.." && pwd)
cd "$root"
src=kernels-native/src/main/resources/dev/jvllm/cuda
nvcc=$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)
"$nvcc" -arch=sm_90 -O3 -std=c++17 -DJV_ACT_TYPE=2 -I "$src" tools/gpu/microbench/mlp_chain.cu -o /tmp/mlp_chain
for kb in 0 64 256; do /tmp/mlp_chain "$kb" "${1:-8}" 20; done
