#!/usr/bin/env bash
# Run ON THE GPU MACHINE from the repository root (.gpu/ carried along): Nsight Compute over a few
# launches of one kernel inside GpuBenchmark on the random Llama-3-8B checkpoint, eager (so every
# launch is a kernel ncu sees). Writes $OUT/NAME.txt (ncu's details page) and $OUT/NAME.ncu-rep.
# Usage: bash tools/gpu/profile-8b.sh NAME KERNEL_REGEX SKIP COUNT -- GpuBenchmark options
#   e.g. bash tools/gpu/profile-8b.sh decode256 paged_decode 2000 2 -- --skip-batch1 --requests none --decode-batches 256
# JVLLM_BENCH_JAVA_OPTS adds JVM options (e.g. an A/B switch).
# SKIP counts launches of the matching kernel only (ncu's --launch-skip with a kernel filter).
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
OUT=${OUT:-$root/.gpu/out}
mkdir -p "$OUT"
note() { echo "$*" >&2; }
name=$1 kernel=$2 skip=$3 count=$4
shift 4
[[ ${1:-} == -- ]] && shift
source tools/gpu/env.sh
ncu=$(command -v ncu || ls /usr/local/cuda/bin/ncu /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -n 1)
[[ -z $ncu ]] && { note "ncu not found"; exit 1; }
classpath=$(ls .gpu/lib/*.jar | tr '\n' ':')
"$ncu" --target-processes all --kernel-name "regex:$kernel" --launch-skip "$skip" --launch-count "$count" \
  --set full --import-source no -f -o "$OUT/$name" \
  $java --add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED ${JVLLM_BENCH_JAVA_OPTS:-} \
  -Dorg.slf4j.simpleLogger.defaultLogLevel=warn -cp "$classpath" dev.jvllm.benchmarks.GpuBenchmark \
  --cache /tmp/jvllm-bench --enforce-eager "$@" > "$OUT/$name-run.log" 2>&1
note "ncu exit $?"
"$ncu" --import "$OUT/$name.ncu-rep" --page details > "$OUT/$name.txt" 2>&1
tail -n 5 "$OUT/$name-run.log" >&2
