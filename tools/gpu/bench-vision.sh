#!/usr/bin/env bash
# Run ON THE GPU MACHINE from the repository root, with .gpu/ from tools/gpu/prepare.sh carried along:
# image requests on a LLaVA-1.5-7B-shaped random checkpoint, jvllm's VisionBenchmark and HF
# Transformers eager (tools/gpu/vision_hf_baseline.py) in one call on one card. JSON lines go to
# $OUT/bench-vision.jsonl, logs beside it. Usage: bash tools/gpu/bench-vision.sh [requests, default 64] [llava|phi3v]
# (phi3v: a Phi-3-Vision-shaped checkpoint, tools/gpu/make_phi3v_checkpoint.py, beside tools/gpu/phi3v_hf_baseline.py)
# (JVLLM_BENCH_JAVA_OPTS adds JVM options, e.g. -Djvllm.cuda.kernelTimes=true; SKIP_TEXT=1, SKIP_HF=1 leave runs out;
# JVLLM_GPU_JARS=DIR puts that folder's jvllm jars, another branch's build, ahead of .gpu/lib's, as bench-8b.sh does)
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
OUT=${OUT:-$root/.gpu/out}
mkdir -p "$OUT"
summary=$OUT/bench-vision.jsonl
: > "$summary"
note() { echo "$*" >&2; }
source tools/gpu/env.sh
requests=${1:-64}
family=${2:-llava}
case $family in
  llava) model=/tmp/jvllm-bench/llava-1.5-7b-shape; maker=tools/gpu/make_llava_checkpoint.py; baseline=tools/gpu/vision_hf_baseline.py; length=2048 ;;
  phi3v) model=/tmp/jvllm-bench/phi-3-vision-shape; maker=tools/gpu/make_phi3v_checkpoint.py; baseline=tools/gpu/phi3v_hf_baseline.py; length=4096 ;;
  *) note "unknown family $family (llava, phi3v)"; exit 2 ;;
esac
start=$(date +%s)
python3 "$maker" "$model" > "$OUT/checkpoint.log" 2>&1 || { tail -5 "$OUT/checkpoint.log" >&2; exit 1; }
note "checkpoint ready after $(( $(date +%s) - start )) s"
echo "{\"what\":\"machine\",\"device\":\"$(nvidia-smi --query-gpu=name --format=csv,noheader | head -n1)\",\"git\":\"$(cat .gpu/git-revision 2>/dev/null)\"}" >> "$summary"
classpath=$(ls ${JVLLM_GPU_JARS:+$JVLLM_GPU_JARS/*.jar} .gpu/lib/*.jar | tr '\n' ':')
$java --add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED -Dorg.slf4j.simpleLogger.defaultLogLevel=info ${JVLLM_BENCH_JAVA_OPTS:-} \
  -cp "$classpath" dev.jvllm.benchmarks.VisionBenchmark --model "$model" --requests "$requests" --max-model-len "$length" 2> "$OUT/jvllm-vision.log" |
  python3 -c 'import json,sys
for line in sys.stdin:
    if line.startswith("{"):
        d=json.loads(line); d["source"]="jvllm"; print(json.dumps(d), flush=True)' | tee -a "$summary"
note "jvllm exit ${PIPESTATUS[0]}"
# The same prompt lengths as text, no image: what the images themselves cost (SKIP_TEXT=1: not run).
[[ ${SKIP_TEXT:-} == 1 ]] || { $java --add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED -Dorg.slf4j.simpleLogger.defaultLogLevel=info ${JVLLM_BENCH_JAVA_OPTS:-} \
  -cp "$classpath" dev.jvllm.benchmarks.VisionBenchmark --model "$model" --requests "$requests" --max-model-len "$length" --text-only 2> "$OUT/jvllm-text.log" |
  python3 -c 'import json,sys
for line in sys.stdin:
    if line.startswith("{"):
        d=json.loads(line); d["source"]="jvllm-text-only"; print(json.dumps(d), flush=True)' | tee -a "$summary"
  note "jvllm text-only exit ${PIPESTATUS[0]}"; }
[[ ${SKIP_HF:-} == 1 ]] && exit 0
python3 "$baseline" "$model" "$requests" 2> "$OUT/hf-vision.log" | tee -a "$summary"
note "hf exit ${PIPESTATUS[0]}"
