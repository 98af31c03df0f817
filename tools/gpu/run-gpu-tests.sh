#!/usr/bin/env bash
# Run ON THE GPU MACHINE from the repository root, with .gpu/ made by tools/gpu/prepare.sh carried
# along: unpacks the Java runtime, checks the kernel sources with nvcc, and runs the kernels-native
# and model-zoo tests (the CUDA ones included) with the JUnit console launcher. Writes a summary
# to $OUT/gpu-tests.txt, the full log to $OUT/gpu-tests.log and JUnit XML under $OUT/junit/.
# Usage: bash tools/gpu/run-gpu-tests.sh [extra console-launcher options, e.g. --select-class=...]
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
OUT=${OUT:-$root/.gpu/out}
mkdir -p "$OUT"
summary=$OUT/gpu-tests.txt
log=$OUT/gpu-tests.log
: > "$summary"
note() { echo "$*" | tee -a "$summary"; }

[[ -f .gpu/jre.txz && -d .gpu/lib && -d .gpu/test-classes ]] || {
  note "run-gpu-tests: .gpu/ is incomplete; run tools/gpu/prepare.sh on the build machine and carry .gpu"; exit 1; }
java=/tmp/jre/bin/java
if [[ ! -x $java ]]; then
  mkdir -p /tmp/jre && tar xJf .gpu/jre.txz -C /tmp/jre
fi

note "== device"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 | tee -a "$summary"
note "java: $($java -version 2>&1 | head -n 1)"

# NVRTC and cuBLAS: the toolkit's, else the ones PyTorch's wheels bring.
libdirs=()
for dir in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib; do
  [[ -d $dir ]] && libdirs+=("$dir")
done
note "libcuda.so.1: $(ldconfig -p 2>/dev/null | grep -m1 -o '/.*libcuda.so.1$' || echo 'not in the loader cache')"
for lib in libnvrtc.so.13 libcublas.so.13; do
  found=$(for d in "${libdirs[@]}"; do [[ -e $d/$lib ]] && echo "$d/$lib"; done | head -n 1)
  if [[ -z $found ]]; then
    found=$(find /opt /usr/local /usr/lib -name "$lib" 2>/dev/null | head -n 1)
    [[ -n $found ]] && libdirs+=("$(dirname "$found")")
  fi
  note "$lib: ${found:-NOT FOUND}"
done
export LD_LIBRARY_PATH="$(IFS=:; echo "${libdirs[*]}")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export JVLLM_CACHE_DIR=/tmp/jvllm-cache

note "== nvcc sm_90 build of the kernel sources"
if command -v nvcc >/dev/null || [[ -x /usr/local/cuda/bin/nvcc ]]; then
  bash kernels-native/src/test/cuda-compile-check.sh sm_90 2>&1 | tee -a "$summary" | grep -E "^(ok|FAIL)" || true
else
  note "nvcc not found; skipped"
fi

note "== tests"
classpath=$(ls .gpu/lib/*.jar .gpu/console/*.jar | tr '\n' ':').gpu/test-classes/kernels-native:.gpu/test-classes/model-zoo:kernels-native/src/test/resources:model-zoo/src/test/resources
start=$(date +%s)
$java --add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED -Xss4m \
  -Dorg.slf4j.simpleLogger.defaultLogLevel=warn \
  -cp "$classpath" org.junit.platform.console.ConsoleLauncher execute \
  --scan-classpath .gpu/test-classes/kernels-native:.gpu/test-classes/model-zoo \
  --disable-banner --disable-ansi-colors --details=tree --details-theme=ascii --reports-dir="$OUT/junit" "$@" > "$log" 2>&1
status=$?
note "console launcher exit $status after $(( $(date +%s) - start )) s"

# Failed tests with their messages, the reasons tests were skipped (aborted by an assumption),
# then the launcher's totals.
note "failed:"
grep -F "[X]" "$log" | sed -E 's/^[| +-]*//' | head -n 60 | tee -a "$summary"
note "skipped, by reason:"
grep -F "[A]" "$log" | sed -E 's/.*\[A\] //' | sort | uniq -c | tee -a "$summary"
sed -n '/Test run finished/,$p' "$log" | tee -a "$summary"
exit $status
