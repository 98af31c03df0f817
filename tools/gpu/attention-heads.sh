#!/usr/bin/env bash
# Run ON THE GPU MACHINE from the repository root, with .gpu/ made by tools/gpu/prepare.sh carried
# along: CudaKernelBenchmark --attention-heads (one layer's attention for several head shapes) once
# per variant, the variants in turn and the whole round twice, so that each variant's two runs bracket
# the others'. A variant is NAME=JVM options (none for the defaults), or NAME=jars=DIR options to put that
# folder's jvllm jars (another branch's build) ahead of .gpu/lib's. Writes JSON lines, each tagged with
# its variant and round, to $OUT/attention-heads.jsonl.
# Usage: bash tools/gpu/attention-heads.sh 'fast=' 'generic=-Djvllm.cuda.genericAttention=true'
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
OUT=${OUT:-$root/.gpu/out}
mkdir -p "$OUT"
summary=$OUT/attention-heads.jsonl
: > "$summary"
note() { echo "$*" >&2; }
source tools/gpu/env.sh
for round in 1 2; do
  for variant in "$@"; do
    name=${variant%%=*}
    options=${variant#*=}
    jars=
    if [[ $options == jars=* ]]; then
      jars=${options%% *}; jars=${jars#jars=}
      [[ $options == *" "* ]] && options=${options#* } || options=
    fi
    classpath=$(ls ${jars:+$jars/*.jar} .gpu/lib/*.jar | tr '\n' ':')
    # shellcheck disable=SC2086  # the options are words
    $java --add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED $options \
      -Dorg.slf4j.simpleLogger.defaultLogLevel=warn -cp "$classpath" dev.jvllm.benchmarks.CudaKernelBenchmark \
      --attention-heads 2>> "$OUT/attention-heads.log" \
      | python3 -c 'import json,sys
for line in sys.stdin:
    if line.startswith("{"):
        d=json.loads(line); d["variant"]=sys.argv[1]; d["round"]=int(sys.argv[2]); print(json.dumps(d), flush=True)' "$name" "$round" \
      | tee -a "$summary"
  done
done
