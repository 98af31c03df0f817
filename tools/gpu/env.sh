# Sourced ON THE GPU MACHINE by the tools/gpu scripts (after note() is defined): unpacks the Java
# runtime of .gpu/jre.txz into /tmp/jre (java=...), reports the device and the CUDA libraries, and
# puts NVRTC and cuBLAS on LD_LIBRARY_PATH.
java=/tmp/jre/bin/java
if [[ ! -x $java ]]; then
  mkdir -p /tmp/jre && tar xJf .gpu/jre.txz -C /tmp/jre
fi

note "== device"
note "$(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1)"
note "java: $($java -version 2>&1 | head -n 1)"

# NVRTC and cuBLAS: the toolkit's, else the ones PyTorch's wheels bring.
libdirs=()
for dir in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib; do
  [[ -d $dir ]] && libdirs+=("$dir")
done
note "libcuda.so.1: $(ldconfig -p 2>/dev/null | grep -m1 -o '/.*libcuda.so.1$' || echo 'not in the loader cache')"
for lib in libnvrtc.so.13 libcublas.so.13 libcublasLt.so.13; do
  found=$(for d in "${libdirs[@]}"; do [[ -e $d/$lib ]] && echo "$d/$lib"; done | head -n 1)
  if [[ -z $found ]]; then
    found=$(find /opt /usr/local /usr/lib -name "$lib" 2>/dev/null | head -n 1)
    [[ -n $found ]] && libdirs+=("$(dirname "$found")")
  fi
  note "$lib: ${found:-NOT FOUND}"
done
export LD_LIBRARY_PATH="$(IFS=:; echo "${libdirs[*]}")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export JVLLM_CACHE_DIR=/tmp/jvllm-cache
