#!/usr/bin/env bash
# Run ON THE GPU MACHINE from the repository root (.gpu/ carried along): Nsight Systems over a
# GpuBenchmark run on the random Llama-3-8B checkpoint, with CUDA graphs traced node by node, so
# that each kernel a graph replay runs is timed as the device ran it (eager kernel times add each
# launch's own latency; a graph's run hides most of it). Writes $OUT/NAME-kernels.txt (time per
# kernel name, summed over the run) and $OUT/NAME-gaps.txt (device idle time between kernels of the
# decode steps, from tools/gpu/nsys-gaps.py).
# Usage: bash tools/gpu/nsys-8b.sh NAME -- GpuBenchmark options
#   e.g. bash tools/gpu/nsys-8b.sh bs1 -- --skip-batch1 --requests none --decode-batches 1
# JVLLM_BENCH_JAVA_OPTS adds JVM options (e.g. an A/B switch).
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
OUT=${OUT:-$root/.gpu/out}
mkdir -p "$OUT"
note() { echo "$*" >&2; }
name=$1
shift
[[ ${1:-} == -- ]] && shift
source tools/gpu/env.sh
nsys=$(command -v nsys || ls /usr/local/cuda/bin/nsys /opt/nvidia/nsight-systems/*/bin/nsys /usr/local/cuda/nsight-systems*/bin/nsys 2>/dev/null | head -n 1)
[[ -z $nsys ]] && { note "nsys not found"; exit 1; }
classpath=$(ls .gpu/lib/*.jar | tr '\n' ':')
report=/tmp/nsys-$name
"$nsys" profile --trace cuda --cuda-graph-trace node --sample none --cpuctxsw none -f true -o "$report" \
  $java --add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED ${JVLLM_BENCH_JAVA_OPTS:-} \
  -Dorg.slf4j.simpleLogger.defaultLogLevel=warn -cp "$classpath" dev.jvllm.benchmarks.GpuBenchmark \
  --cache /tmp/jvllm-bench "$@" > "$OUT/$name-run.log" 2>&1
note "nsys exit $?"
"$nsys" stats --report cuda_gpu_kern_sum --format csv -o "/tmp/nsys-$name" "$report.nsys-rep" > /dev/null 2>&1
"$nsys" stats --report cuda_gpu_trace --format csv -o "/tmp/nsys-$name" "$report.nsys-rep" > /dev/null 2>&1
python3 - "/tmp/nsys-${name}_cuda_gpu_kern_sum.csv" > "$OUT/$name-kernels.txt" <<'EOF'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
print(f"{'total ms':>10} {'calls':>8} {'avg us':>9} {'med us':>9}  kernel")
for r in rows:
    print(f"{float(r['Total Time (ns)'])/1e6:10.2f} {int(r['Instances']):8d} {float(r['Avg (ns)'])/1e3:9.2f}"
          f" {float(r['Med (ns)'])/1e3:9.2f}  {r['Name'][:110]}")
EOF
python3 tools/gpu/nsys-gaps.py "/tmp/nsys-${name}_cuda_gpu_trace.csv" > "$OUT/$name-gaps.txt"
tail -n 3 "$OUT/$name-run.log" >&2
