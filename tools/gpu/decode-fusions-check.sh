#!/usr/bin/env bash
# Run ON THE GPU MACHINE from the repository root (.gpu/ from tools/gpu/prepare.sh carried along):
# the eighteenth session's prepared decode work, measured and tested in two calls of under ten
# minutes each. Copies only a few files to $OUT (the device tool brings back a limited number).
#   checks  decode_bench (its defaults) beside its gather_read lines, then the GPU tests with
#           defaults and with every new path on -> $OUT/decode-variants.jsonl, $OUT/gpu-tests.txt,
#           $OUT/gpu-tests-fusions.txt
#   ab      GpuBenchmark at batches 64 and 256, one variant per prepared switch -> $OUT/ab.jsonl;
#           then batch 1 under other gemv splits and an L2 prefetch -> $OUT/ab-batch1.jsonl
# Usage: bash tools/gpu/decode-fusions-check.sh checks|ab
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
OUT=${OUT:-$root/.gpu/out}
work=/tmp/decode-fusions
mkdir -p "$OUT" "$work"
fusions='-Djvllm.cuda.stridedDecodeQkv=true -Djvllm.cuda.splitProductSlices=4'
classes='.*(CudaSixteen|CudaGraphs|LlamaGoldenCuda|ContinuousBatching|PrefixCaching|CublasLt).*'
case ${1:-} in
  checks)
    timeout 200 bash tools/gpu/microbench/run.sh decode > "$OUT/decode-variants.jsonl" 2> "$work/decode.err"
    echo "decode_bench: exit $?, $(wc -l < "$OUT/decode-variants.jsonl") lines"
    OUT=$work/tests timeout 170 bash tools/gpu/run-gpu-tests.sh --include-classname "$classes" > /dev/null 2>&1
    echo "tests with defaults: exit $?"; cp "$work/tests/gpu-tests.txt" "$OUT/gpu-tests.txt"
    OUT=$work/tests-fusions JVLLM_TEST_JAVA_OPTS="$fusions" \
      timeout 170 bash tools/gpu/run-gpu-tests.sh --include-classname "$classes" > /dev/null 2>&1
    echo "tests with the fusions: exit $?"; cp "$work/tests-fusions/gpu-tests.txt" "$OUT/gpu-tests-fusions.txt"
    grep -hE "tests (successful|failed)|\[X\]" "$OUT/gpu-tests.txt" "$OUT/gpu-tests-fusions.txt" | head -30 ;;
  ab)
    OUT=$work/ab timeout 400 bash tools/gpu/ab-8b.sh 'base=' 'qkv=-Djvllm.cuda.stridedDecodeQkv=true' \
      'split=-Djvllm.cuda.splitProductSlices=4' "both=$fusions" \
      -- --skip-batch1 --requests none > "$work/ab-stdout.txt" 2>&1
    echo "ab: exit $?"; grep -v '"request' "$work/ab/ab.jsonl" > "$OUT/ab.jsonl"
    python3 tools/gpu/ab-table.py "$OUT/ab.jsonl"
    # Batch 1's gemv tuning was set on H100s; the H200 reads faster, so each launch's ramp weighs more.
    OUT=$work/ab1 timeout 150 bash tools/gpu/ab-8b.sh 'base=' 'part512=-Djvllm.cuda.gemvShortestPart=512' \
      'part2048=-Djvllm.cuda.gemvShortestPart=2048' 'l2=-Djvllm.cuda.gemvPrefetchBytes=4096' \
      -- --requests none --decode-batches none > "$work/ab1-stdout.txt" 2>&1
    echo "ab batch 1: exit $?"; grep -v '"request' "$work/ab1/ab.jsonl" > "$OUT/ab-batch1.jsonl"
    python3 tools/gpu/ab-table.py "$OUT/ab-batch1.jsonl" ;;
  *) echo "usage: $0 checks|ab" >&2; exit 2 ;;
esac
