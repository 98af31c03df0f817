#!/usr/bin/env bash
# Run HERE (the build machine, with Java 25 and Maven): builds what tools/gpu/run-gpu-tests.sh
# needs on the GPU machine, which has CUDA but no Java, into .gpu/ (ignored by git):
#   .gpu/jre.txz            a jlinked Java 25 runtime (shared/gpu/pack-jre.sh), made once
#   .gpu/lib/*.jar          the modules' jars and their runtime and test dependencies
#   .gpu/console/*.jar      the JUnit platform console launcher
#   .gpu/test-classes/M/    the compiled tests (and test resources: the goldens) of kernels-native and model-zoo
# Usage: tools/gpu/prepare.sh   (then carry .gpu to the device run)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
export JAVA_HOME=${JAVA_HOME:-/usr/lib/jvm/temurin-25-jdk-amd64}
out=.gpu
limit_mb=60

rm -rf "$out/lib" "$out/console" "$out/test-classes"
mkdir -p "$out/lib" "$out/console" "$out/test-classes"

# JUnit's own jars are left out: the console launcher bundles them, and two copies of an engine
# on the class path stop the launcher.
mvn -B -ntp -q -pl model-zoo -am package dependency:copy-dependencies -DskipTests \
  -DincludeScope=test -DoutputDirectory="$root/$out/lib" \
  -DexcludeGroupIds=dev.jvllm,org.junit.jupiter,org.junit.platform,org.opentest4j,org.apiguardian
for module in tokenizer engine-core kernels-native model-zoo; do
  find "$module/target" -maxdepth 1 -name "jvllm-$module-*.jar" ! -name '*-tests.jar' ! -name '*-sources.jar' \
    -exec cp {} "$out/lib/" \;
done
for module in kernels-native model-zoo; do
  cp -r "$module/target/test-classes" "$out/test-classes/$module"
done

# The launcher of the JUnit platform that matches the project's JUnit (Jupiter 5.x.y runs on platform 1.x.y).
jupiter=$(sed -n 's:.*<junit.version>\(.*\)</junit.version>.*:\1:p' pom.xml)
[[ $jupiter == 5.* ]] || { echo "prepare: cannot read junit.version 5.x from pom.xml (got '$jupiter')" >&2; exit 1; }
version=1.${jupiter#5.}
mvn -B -ntp -q dependency:copy -Dartifact="org.junit.platform:junit-platform-console-standalone:$version" \
  -DoutputDirectory="$root/$out/console"

if [[ ! -f $out/jre.txz ]]; then
  pack=""
  for candidate in "$root/shared/gpu/pack-jre.sh" /work/shared/gpu/pack-jre.sh; do
    [[ -f $candidate ]] && { pack=$candidate; break; }
  done
  [[ -n $pack ]] || { echo "prepare: shared/gpu/pack-jre.sh not found; make $out/jre.txz with it" >&2; exit 1; }
  bash "$pack" "$out"
fi

size_mb=$(du -sm "$out" | cut -f1)
echo "prepare: $out is ${size_mb} MB ($(ls "$out/lib" | wc -l) jars, console $(ls "$out/console"))"
if (( size_mb > limit_mb )); then
  echo "prepare: $out is over ${limit_mb} MB" >&2
  exit 1
fi
