#!/usr/bin/env bash
# Run ON THE GPU MACHINE from the repository root, with .gpu/ made by tools/gpu/prepare.sh carried
# along: issue 4's benchmark, side by side in one call on one card. Writes JSON lines to
# $OUT/bench-8b.jsonl (each line one measurement, tagged with its source) and logs beside it.
#   1. ../shared/anchors/gpu_hf_baseline.py, copied into .gpu/anchors by prepare.sh (HF Transformers
#      eager; also the HBM read bandwidth that sets the batch-1 floor)
#   2. jvllm's GpuBenchmark on a random Llama-3-8B-shaped BF16 checkpoint
#   3. ../shared/anchors/gpu_compiled_baseline.py (PyTorch compiled, CUDA graphs)
# Usage: bash tools/gpu/bench-8b.sh [--anchors hf,compiled | --no-anchors] [-- GpuBenchmark options]
# (the three take about 9 minutes together: split them over two calls on one card kind, each with
# its own jvllm run, e.g. --anchors hf, then --anchors compiled -- --requests none)
# (JVLLM_BENCH_JAVA_OPTS adds JVM options, e.g. a flight recording.)
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
OUT=${OUT:-$root/.gpu/out}
mkdir -p "$OUT"
summary=$OUT/bench-8b.jsonl
: > "$summary"
note() { echo "$*" >&2; }
anchors=hf,compiled
while [[ $# -gt 0 ]]; do
  case $1 in
    --no-anchors) anchors=; shift ;;
    --anchors) anchors=$2; shift 2 ;;
    --) shift; break ;;
    *) break ;;
  esac
done
source tools/gpu/env.sh
tag() { python3 -c 'import json,sys
for line in sys.stdin:
    line=line.strip()
    if line.startswith("{"):
        d=json.loads(line); d["source"]=sys.argv[1]; print(json.dumps(d), flush=True)' "$1"; }

echo "{\"what\":\"machine\",\"device\":\"$(nvidia-smi --query-gpu=name --format=csv,noheader | head -n1)\",\"date\":\"$(date -u +%F)\",\"git\":\"$(cat .gpu/git-revision 2>/dev/null)\"}" | tee -a "$summary"
if [[ ,$anchors, == *,hf,* ]]; then
  python3 .gpu/anchors/gpu_hf_baseline.py 2> "$OUT/hf.log" | tag hf-anchor | tee -a "$summary"
fi
# JVLLM_GPU_JARS: a folder of another tree's jvllm jars, put ahead of .gpu/lib's (A/B across branches in one call).
classpath=$(ls ${JVLLM_GPU_JARS:+$JVLLM_GPU_JARS/*.jar} .gpu/lib/*.jar | tr '\n' ':')
$java --add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED ${JVLLM_BENCH_JAVA_OPTS:-} \
  -Dorg.slf4j.simpleLogger.defaultLogLevel=info -cp "$classpath" dev.jvllm.benchmarks.GpuBenchmark \
  --cache /tmp/jvllm-bench "$@" 2> "$OUT/jvllm.log" | tag jvllm | tee -a "$summary"
note "jvllm exit ${PIPESTATUS[0]}"
if [[ ,$anchors, == *,compiled,* ]]; then
  python3 .gpu/anchors/gpu_compiled_baseline.py 2> "$OUT/compiled.log" | tag compiled-anchor | tee -a "$summary"
fi
