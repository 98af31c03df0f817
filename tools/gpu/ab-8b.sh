#!/usr/bin/env bash
# Run ON THE GPU MACHINE from the repository root (.gpu/ carried along): the same GpuBenchmark run
# under several JVM option sets, one after another in one call on one card, for A/B comparisons
# of the CUDA backend's switches. Each variant is NAME=OPTIONS (OPTIONS may be empty); the
# results go to $OUT/ab.jsonl, each line tagged with its variant, and each variant's log to
# $OUT/ab-NAME.log. Run the list twice (A B A B) when the difference sought is near the noise.
# Usage: bash tools/gpu/ab-8b.sh 'base=' 'fused=-Djvllm.cuda.x=true' 'other=jars=.gpu/alt -Dx=y' ... -- GpuBenchmark options
# (jars=DIR: that folder's jvllm jars ahead of .gpu/lib's, e.g. another branch's build, in the same call)
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
OUT=${OUT:-$root/.gpu/out}
mkdir -p "$OUT"
variants=()
while [[ $# -gt 0 && $1 != -- ]]; do variants+=("$1"); shift; done
[[ $# -gt 0 ]] && shift
: > "$OUT/ab.jsonl"
for variant in "${variants[@]}"; do
  name=${variant%%=*}
  options=${variant#*=}
  jars=
  if [[ $options == jars=* ]]; then  # 'name=jars=DIR options': another tree's jvllm jars (bench-8b.sh's JVLLM_GPU_JARS)
    jars=${options%% *}; jars=${jars#jars=}
    [[ $options == *" "* ]] && options=${options#* } || options=
  fi
  echo "== $name: ${jars:+jars $jars, }$options" >&2
  OUT=/tmp/ab-$name JVLLM_GPU_JARS=$jars JVLLM_BENCH_JAVA_OPTS="$options" bash tools/gpu/bench-8b.sh --no-anchors -- "$@" 2> "$OUT/ab-$name.log" |
    python3 -c 'import json,sys
for line in sys.stdin:
    d=json.loads(line); d["variant"]=sys.argv[1]; print(json.dumps(d), flush=True)' "$name" | tee -a "$OUT/ab.jsonl"
  tail -n 3 "/tmp/ab-$name/jvllm.log" >> "$OUT/ab-$name.log" 2>/dev/null
done
