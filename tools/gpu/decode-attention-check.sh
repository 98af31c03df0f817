#!/usr/bin/env bash
# Run ON THE GPU MACHINE from the repository root (.gpu/ from tools/gpu/prepare.sh carried along):
# two decode-attention experiments, both off by default, measured and tested in calls of under ten
# minutes each, copying only a few files to $OUT:
#   KV_HEAD_MAJOR=1  the head-major KV cache ([block][KV head][slot of the block][D]);
#   DECODE_STAGED=1  each warp's next tile asked for by cp.async into shared memory before the
#                    warp works on the tile it holds (128 registers spill 40 bytes at four blocks an
#                    SM; none at three, DECODE_MIN_BLOCKS=3, 164 registers).
#   checks   decode_bench for the defaults and six variants (beside gather_read's lines), then the GPU
#            tests of decode attention with each experiment: DECODE_STAGED=1, and all three defines
#            together -> $OUT/decode-variants.jsonl, $OUT/gpu-tests-staged.txt, $OUT/gpu-tests-all.txt
#   ab DEFS  GpuBenchmark at batches 64 and 256, A B A B, defaults against kernelDefines DEFS (e.g.
#            KV_HEAD_MAJOR=1,DECODE_STAGED=1), then batch 1 likewise, A B -> $OUT/ab.jsonl, $OUT/ab-batch1.jsonl
# Usage: bash tools/gpu/decode-attention-check.sh checks | ab DEFINES
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
OUT=${OUT:-$root/.gpu/out}
work=/tmp/decode-attention
mkdir -p "$OUT" "$work"
tests='.*(CudaSixteen|CudaKernels|CudaGraphs|LlamaGoldenCuda|ContinuousBatching|PrefixCaching|KvCacheLifecycle).*'
# The GPU tests of decode attention under kernelDefines $2, summarized into $OUT/gpu-tests-$1.txt.
run_tests() {
  OUT=$work/tests-$1 JVLLM_TEST_JAVA_OPTS="-Djvllm.cuda.kernelDefines=$2" timeout 270 bash tools/gpu/run-gpu-tests.sh \
    --include-classname "$tests" > /dev/null 2>&1
  echo "tests with $2: exit $?"; cp "$work/tests-$1/gpu-tests.txt" "$OUT/gpu-tests-$1.txt"
  grep -hE "tests (successful|failed)|\[X\]" "$OUT/gpu-tests-$1.txt" | head -20
}
case ${1:-} in
  checks)
    DECODE_VARIANTS=';-DKV_HEAD_MAJOR=1;-DDECODE_MIN_BLOCKS=3;-DDECODE_STAGED=1;-DDECODE_STAGED=1 -DDECODE_MIN_BLOCKS=3;-DKV_HEAD_MAJOR=1 -DDECODE_STAGED=1;-DKV_HEAD_MAJOR=1 -DDECODE_STAGED=1 -DDECODE_MIN_BLOCKS=3' \
      timeout 200 bash tools/gpu/microbench/run.sh decode > "$OUT/decode-variants.jsonl" 2> "$work/decode.err"
    echo "decode: exit $?"; tail -3 "$work/decode.err"
    python3 - "$OUT/decode-variants.jsonl" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    d = json.loads(line)
    if d.get("what") in ("paged_decode", "gather_read"):
        print(d["what"], d["batch"], d.get("layout", ""), d.get("tiles_in_flight", ""), d["us"], d.get("defines", ""))
PY
    run_tests staged DECODE_STAGED=1
    run_tests all KV_HEAD_MAJOR=1,DECODE_STAGED=1,DECODE_MIN_BLOCKS=3 ;;
  ab)
    defines=${2:?usage: $0 ab DEFINES}
    new="-Djvllm.cuda.kernelDefines=$defines"
    OUT=$work/ab timeout 300 bash tools/gpu/ab-8b.sh 'base=' "new=$new" 'base2=' "new2=$new" \
      -- --skip-batch1 --requests none > "$work/ab-stdout.txt" 2>&1
    echo "ab: exit $?"; grep -v '"request' "$work/ab/ab.jsonl" > "$OUT/ab.jsonl"
    python3 tools/gpu/ab-table.py "$OUT/ab.jsonl"
    OUT=$work/ab1 timeout 150 bash tools/gpu/ab-8b.sh 'base=' "new=$new" -- --requests none --decode-batches none \
      > "$work/ab1-stdout.txt" 2>&1
    echo "ab batch 1: exit $?"; grep -v '"request' "$work/ab1/ab.jsonl" > "$OUT/ab-batch1.jsonl"
    python3 tools/gpu/ab-table.py "$OUT/ab-batch1.jsonl" ;;
  *) echo "usage: $0 checks | ab DEFINES" >&2; exit 2 ;;
esac
