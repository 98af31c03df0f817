#!/usr/bin/env bash
# Run ON THE GPU MACHINE from the repository root, with .gpu/ made by tools/gpu/prepare.sh carried
# along: unpacks the Java runtime, checks the kernel sources with nvcc, and runs the kernels-native
# and model-zoo tests (the CUDA ones included) with the JUnit console launcher. Writes a summary
# to $OUT/gpu-tests.txt, the full log to $OUT/gpu-tests.log and JUnit XML under $OUT/junit/.
# Usage: bash tools/gpu/run-gpu-tests.sh [--gpu-set | extra console-launcher options, e.g. --select-class=...]
# --gpu-set: the classes that use a GPU (GPU_SET below); without options every class runs.
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
source tools/gpu/env.sh

note "== nvcc sm_90 build of the kernel sources"
if command -v nvcc >/dev/null || [[ -x /usr/local/cuda/bin/nvcc ]]; then
  bash kernels-native/src/test/cuda-compile-check.sh sm_90 2>&1 | tee -a "$summary" | grep -E "^(ok|FAIL)" || true
else
  note "nvcc not found; skipped"
fi

# Every test class that runs on a GPU where one is found (the CPU-only classes left out). Kept here, so
# that a class a session adds is not missed by a pattern copied from notes (CublasLtProductsTest was).
GPU_SET='.*(Cuda|Cublas|TunedProducts|GraphRecording|KernelSources|Golden|ContinuousBatching|PrefixCaching|KvCacheLifecycle|MoeFamilies|GpuMemory|AsyncScheduling|DeviceSampling|Lora|Llava|AnyResolution|InternVL|GenericDecoder|Qwen2VL|Gemma3|ImageMemory|ImageEncode|EncoderDecoder|EncoderMemory|Phi3V|Bge|Embed|DeepseekMoe).*'
if [[ ${1:-} == --gpu-set ]]; then
  shift
  set -- --include-classname "$GPU_SET" "$@"
fi

note "== tests"
# BgeSmallOnnxTest and its OnnxBertReference compare with ONNX Runtime, which prepare.sh leaves
# behind with its 130 MB model: loading them stopped the launcher's discovery (exit 255 with a
# Bert filter), so they are excluded.
classpath=$(ls .gpu/lib/*.jar .gpu/console/*.jar | tr '\n' ':').gpu/test-classes/kernels-native:.gpu/test-classes/model-zoo:.gpu/test-classes/plugins/encoder-decoder:.gpu/test-classes/engine-core:kernels-native/src/test/resources:model-zoo/src/test/resources:plugins/encoder-decoder/src/test/resources:engine-core/src/test/resources
start=$(date +%s)
$java --add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED -Xss4m ${JVLLM_TEST_JAVA_OPTS:-} \
  -Dorg.slf4j.simpleLogger.defaultLogLevel=warn \
  -cp "$classpath" org.junit.platform.console.ConsoleLauncher execute \
  --scan-classpath .gpu/test-classes/kernels-native:.gpu/test-classes/model-zoo:.gpu/test-classes/plugins/encoder-decoder \
  --exclude-classname '.*Onnx.*' \
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
