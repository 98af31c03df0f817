#!/usr/bin/env bash
# Compiles every CUDA kernel source with nvcc for Hopper (sm_90), as NVRTC will at run time, and
# prints each kernel's registers, shared memory and spills. Needs nvcc, not a GPU.
# Usage: kernels-native/src/test/cuda-compile-check.sh [ARCH]   (default sm_90)
set -euo pipefail
arch=${1:-sm_90}
nvcc=${NVCC:-$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)}
[[ -x $nvcc ]] || { echo "cuda-compile-check: nvcc not found (set NVCC)" >&2; exit 1; }
src=$(cd "$(dirname "$0")/../main/resources/dev/jvllm/cuda" && pwd)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
failed=0
# Each module is built per activation type (common.cuh's JV_ACT_TYPE): 0 float32, 2 bfloat16.
for cu in "$src"/*.cu; do
 for act in 0 2; do
  name=$(basename "$cu" .cu)
  flags=(-arch="$arch" -std=c++17 -DJV_ACT_TYPE=$act)
  if "$nvcc" "${flags[@]}" -ptx -o "$out/$name.ptx" "$cu" \
     && "$nvcc" "${flags[@]}" -cubin -o "$out/$name.cubin" --resource-usage "$cu" 2> "$out/$name.log"; then
    echo "ok   $name.cu (JV_ACT_TYPE=$act)"
    grep -E "Function properties|Used|spill" "$out/$name.log" | paste - - - \
      | sed -E 's/ptxas info +: //g; s/Function properties for /    /; s/ +/ /g'
    if grep -qE "[1-9][0-9]* bytes (stack frame|spill)" "$out/$name.log"; then
      echo "     warning: $name.cu uses local memory (stack frame or spills)"
    fi
  else
    echo "FAIL $name.cu (JV_ACT_TYPE=$act)"; cat "$out/$name.log" >&2; failed=1
  fi
 done
done
exit $failed
