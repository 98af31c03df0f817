#!/usr/bin/env bash
# Run ON THE GPU MACHINE from the repository root, with .gpu/ from tools/gpu/prepare.sh carried along:
# encoder-decoder requests on a BART-large-shaped random checkpoint, jvllm's EncoderDecoderBenchmark and
# HF Transformers eager generate (tools/gpu/encoder_decoder_bench.py) in one call on one card. JSON lines
# go to $OUT/bench-encoder-decoder.jsonl, logs beside it.
# Usage: bash tools/gpu/bench-encoder-decoder.sh [requests 64] [input 512] [output 128]  (SKIP_HF=1 leaves HF out;
# JVLLM_BENCH_ARGS adds EncoderDecoderBenchmark options, e.g. --enforce-eager; JVLLM_BENCH_JAVA_OPTS JVM options;
# JVLLM_GPU_JARS=DIR puts that folder's jvllm jars, another build's, ahead of .gpu/lib's, as bench-vision.sh does;
# FAMILY=t5 benchmarks a Flan-T5-base-shaped checkpoint instead of BART-large's)
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
OUT=${OUT:-$root/.gpu/out}
mkdir -p "$OUT"
summary=$OUT/bench-encoder-decoder.jsonl
: > "$summary"
note() { echo "$*" >&2; }
source tools/gpu/env.sh
requests=${1:-64} input=${2:-512} output=${3:-128}
family=${FAMILY:-bart}
model=/tmp/jvllm-bench/bart-large-shape
[[ $family == t5 ]] && model=/tmp/jvllm-bench/flan-t5-base-shape
python3 tools/gpu/encoder_decoder_bench.py "$model" --make-only --family "$family" > "$OUT/checkpoint.log" 2>&1 || { tail -5 "$OUT/checkpoint.log" >&2; exit 1; }
echo "{\"what\":\"machine\",\"device\":\"$(nvidia-smi --query-gpu=name --format=csv,noheader | head -n1)\",\"git\":\"$(cat .gpu/git-revision 2>/dev/null)\"}" >> "$summary"
classpath=$(ls ${JVLLM_GPU_JARS:+$JVLLM_GPU_JARS/*.jar} .gpu/lib/*.jar | tr '\n' ':')
$java --add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED -Dorg.slf4j.simpleLogger.defaultLogLevel=info ${JVLLM_BENCH_JAVA_OPTS:-} \
  -cp "$classpath" dev.jvllm.benchmarks.EncoderDecoderBenchmark --model "$model" --requests "$requests" --input "$input" --output "$output" ${JVLLM_BENCH_ARGS:-} \
  2> "$OUT/jvllm-encoder-decoder.log" |
  python3 -c 'import json,sys
for line in sys.stdin:
    d=json.loads(line); d["source"]="jvllm"; print(json.dumps(d), flush=True)' | tee -a "$summary"
echo "jvllm exit ${PIPESTATUS[0]}" >&2
[[ ${SKIP_HF:-} == 1 ]] && exit 0
python3 tools/gpu/encoder_decoder_bench.py "$model" "$requests" "$input" "$output" --family "$family" 2> "$OUT/hf-encoder-decoder.log" | tee -a "$summary"
