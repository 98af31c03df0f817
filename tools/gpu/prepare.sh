#!/usr/bin/env bash
# Run HERE (the build machine, with Java 25 and Maven): builds what tools/gpu/run-gpu-tests.sh
# needs on the GPU machine, which has CUDA but no Java, into .gpu/ (ignored by git):
#   .gpu/jre.txz            a jlinked Java 25 runtime with the modules the tests need, made once
#   .gpu/lib/*.jar          the modules' jars and their runtime and test dependencies
#   .gpu/console/*.jar      the JUnit platform console launcher
#   .gpu/test-classes/M/    the compiled tests of kernels-native, model-zoo and plugins/encoder-decoder, run there, and of engine-core,
#                           whose helpers (SafetensorsTestWriter, ...) they use (resources stay in src/test/resources)
# Usage: tools/gpu/prepare.sh   (then carry .gpu to the device run)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
export JAVA_HOME=${JAVA_HOME:-/usr/lib/jvm/temurin-25-jdk-amd64}
out=.gpu
limit_mb=31  # the repository (33 MB tracked) and .gpu travel together under 64 MiB

rm -rf "$out/lib" "$out/console" "$out/test-classes"
mkdir -p "$out/lib" "$out/console" "$out/test-classes"

# DJL and its dependencies stay behind too (5 MB): no test of the GPU set, and neither GpuBenchmark nor
# VisionBenchmark, loads a tokenizer (checked: the set's pattern gives the same 237 passes on the CPU with
# and without them). Tests that need a tokenizer fail there with NoClassDefFoundError.
# The embedding tests' ONNX Runtime and bge-small model (130 MB) stay behind: the GPU run selects
# the CUDA, golden and engine tests. JUnit's own jars are left out: the console launcher bundles them, and two copies of an engine
# on the class path stop the launcher.
mvn -B -ntp -q -pl model-zoo,plugins/encoder-decoder -am package dependency:copy-dependencies -DskipTests \
  -DincludeScope=test -DoutputDirectory="$root/$out/lib" \
  -DexcludeGroupIds=dev.jvllm,org.junit.jupiter,org.junit.platform,org.opentest4j,org.apiguardian,com.microsoft.onnxruntime,dev.langchain4j \
  -DexcludeArtifactIds=api,tokenizers,jna,gson,commons-io,commons-codec,commons-compress
# The benchmarks jar alone: GpuBenchmark needs only the modules above; Jlama and ONNX Runtime stay behind.
mvn -B -ntp -q -pl benchmarks package -DskipTests
for module in tokenizer engine-core kernels-native model-zoo benchmarks plugins/encoder-decoder; do
  find "$module/target" -maxdepth 1 -name "jvllm-*.jar" ! -name '*-tests.jar' ! -name '*-sources.jar' \
    -exec cp {} "$out/lib/" \;
done
# Test resources (the goldens, ~25 MB) travel with the repository itself: run-gpu-tests.sh puts
# each module's src/test/resources on the class path, so only compiled classes are copied here.
for module in engine-core kernels-native model-zoo plugins/encoder-decoder; do
  mkdir -p "$out/test-classes/$module"
  (cd "$module/target/test-classes" && find . -name '*.class' -exec cp --parents {} "$root/$out/test-classes/$module/" \;)
done

# The GPU benchmark's anchors (../shared does not travel) and the revision the jars were built from.
rm -rf "$out/anchors" && mkdir -p "$out/anchors"
cp "$root"/../shared/anchors/*.py "$out/anchors/" 2>/dev/null || echo "prepare: ../shared/anchors not found; bench-8b.sh --no-anchors only" >&2
git rev-parse --short HEAD > "$out/git-revision"

# The launcher of the JUnit platform that matches the project's JUnit (Jupiter 5.x.y runs on platform 1.x.y).
jupiter=$(sed -n 's:.*<junit.version>\(.*\)</junit.version>.*:\1:p' pom.xml)
[[ $jupiter == 5.* ]] || { echo "prepare: cannot read junit.version 5.x from pom.xml (got '$jupiter')" >&2; exit 1; }
version=1.${jupiter#5.}
mvn -B -ntp -q dependency:copy -Dartifact="org.junit.platform:junit-platform-console-standalone:$version" \
  -DoutputDirectory="$root/$out/console"

# The repository (~40 MB with the goldens) travels too, under a 64 MiB limit: keep .gpu small.
# The runtime holds only the modules the tests use (add jdk.jfr for a flight recording).
if [[ ! -f $out/jre.txz ]]; then
  jdk=$JAVA_HOME
  tmp=$(mktemp -d)
  "$jdk/bin/jlink" --add-modules java.base,java.logging,java.xml,java.management,java.naming,jdk.incubator.vector,jdk.unsupported \
    --strip-debug --no-header-files --no-man-pages --compress=zip-0 --output "$tmp/jre" 2>/dev/null
  XZ_OPT=-9e tar cJf "$out/jre.txz" -C "$tmp/jre" .
  rm -rf "$tmp"
fi

size_mb=$(du -sm "$out" | cut -f1)
echo "prepare: $out is ${size_mb} MB ($(ls "$out/lib" | wc -l) jars, console $(ls "$out/console"))"
if (( size_mb > limit_mb )); then
  echo "prepare: $out is over ${limit_mb} MB" >&2
  exit 1
fi
# A device call carries the working tree with .gpu, 64 MiB in all: say so before a call is refused.
tree_bytes=$(git -C "$root" ls-files -z | (cd "$root" && xargs -0 du -cb 2>/dev/null) | tail -n 1 | cut -f1)
kit_bytes=$(du -sb "$out" | cut -f1)
if (( tree_bytes + kit_bytes > 64 * 1024 * 1024 )); then
  echo "prepare: the working tree ($(( tree_bytes >> 20 )) MiB) and $out ($(( kit_bytes >> 20 )) MiB) are over the 64 MiB a" \
    "device call carries: run tools/gpu/aside.sh aside before the call (it moves out what no GPU run reads)" \
    "and tools/gpu/aside.sh restore right after it" >&2
fi
