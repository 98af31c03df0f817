#!/usr/bin/env bash
# Run ON THE GPU MACHINE from the repository root (.gpu/ from tools/gpu/prepare.sh carried along):
# the head-major KV cache experiment (-Djvllm.cuda.kernelDefines=KV_HEAD_MAJOR=1), measured and
# tested in two calls of under ten minutes each, copying only a few files to $OUT.
#   checks  decode_bench with the defaults, head-major and three blocks an SM (beside gather_read's lines, one and two
#           tiles in flight in each layout), then the GPU tests with the head-major cache
#           -> $OUT/decode-head-major.jsonl, $OUT/gpu-tests-head-major.txt
#   ab      GpuBenchmark at batches 64 and 256, A B A B, then batch 1 with head-major and with
#           decode attention's shortest partitions of 32 and 128 -> $OUT/ab.jsonl, $OUT/ab-batch1.jsonl
# Usage: bash tools/gpu/head-major-check.sh checks|ab
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
OUT=${OUT:-$root/.gpu/out}
work=/tmp/head-major
mkdir -p "$OUT" "$work"
hnd='-Djvllm.cuda.kernelDefines=KV_HEAD_MAJOR=1'
case ${1:-} in
  checks)
    DECODE_VARIANTS=';-DKV_HEAD_MAJOR=1;-DDECODE_MIN_BLOCKS=3' timeout 160 bash tools/gpu/microbench/run.sh decode \
      > "$OUT/decode-head-major.jsonl" 2> "$work/decode.err"
    echo "decode: exit $?"
    python3 - "$OUT/decode-head-major.jsonl" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    d = json.loads(line)
    if d.get("what") in ("paged_decode", "gather_read"):
        print(d["what"], d["batch"], d.get("layout", ""), d.get("tiles_in_flight", ""), d["us"], d.get("defines", ""))
PY
    OUT=$work/tests JVLLM_TEST_JAVA_OPTS="$hnd" timeout 300 bash tools/gpu/run-gpu-tests.sh \
      --include-classname '.*(CudaSixteen|CudaKernels|CudaGraphs|LlamaGoldenCuda|ContinuousBatching|PrefixCaching|KvCacheLifecycle).*' > /dev/null 2>&1
    echo "tests with the head-major cache: exit $?"; cp "$work/tests/gpu-tests.txt" "$OUT/gpu-tests-head-major.txt"
    grep -hE "tests (successful|failed)|\[X\]" "$OUT/gpu-tests-head-major.txt" | head -20 ;;
  ab)
    OUT=$work/ab timeout 300 bash tools/gpu/ab-8b.sh 'base=' "hnd=$hnd" 'base2=' "hnd2=$hnd" \
      -- --skip-batch1 --requests none > "$work/ab-stdout.txt" 2>&1
    echo "ab: exit $?"; grep -v '"request' "$work/ab/ab.jsonl" > "$OUT/ab.jsonl"
    python3 tools/gpu/ab-table.py "$OUT/ab.jsonl"
    OUT=$work/ab1 timeout 200 bash tools/gpu/ab-8b.sh 'base=' "hnd=$hnd" \
      'short32=-Djvllm.cuda.decodeShortestPartition=32' 'short128=-Djvllm.cuda.decodeShortestPartition=128' \
      -- --requests none --decode-batches none > "$work/ab1-stdout.txt" 2>&1
    echo "ab batch 1: exit $?"; grep -v '"request' "$work/ab1/ab.jsonl" > "$OUT/ab-batch1.jsonl"
    python3 tools/gpu/ab-table.py "$OUT/ab-batch1.jsonl" ;;
  *) echo "usage: $0 checks|ab" >&2; exit 2 ;;
esac
