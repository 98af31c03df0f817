/**
 * The CUDA backend, through the foreign function and memory API (no JNI, no native build step).
 *
 * <ul>
 *   <li>Bindings, one class per library, each loaded once and failing with where it looked:
 *       {@code CudaDriver} ({@code libcuda.so.1}), {@code Nvrtc}
 *       ({@code libnvrtc.so.13}), {@code Cublas} ({@code libcublas.so.13}). Every
 *       result code becomes a {@code CudaException} naming the call and the error.</li>
 *   <li>Kernels: CUDA C++ in {@code resources/dev/jvllm/cuda/*.cu} (one module per file, sharing
 *       {@code common.cuh}), compiled by NVRTC for the device's architecture at first use and
 *       cached on disk ({@code KernelCompiler}), launched through
 *       {@code KernelLauncher} on the backend's one stream.</li>
 *   <li>Memory: {@code DeviceMemory} (cuMemAlloc for weights and the KV cache, the
 *       stream-ordered pool for activations and per-batch indices, freed when unreachable);
 *       {@code CudaTensor} is a typed view of a device buffer.</li>
 * </ul>
 *
 * <p>What this first version leaves for later, roughly in order of what it would gain:
 * <ul>
 *   <li>bf16 activations and KV cache (the tensor type is a field; kernels read float32 now), so
 *       that cuBLAS runs bf16 × bf16 without the rounding pass in front of each linear layer;</li>
 *   <li>flash-style prefill attention on tensor cores, and a context split for long decodes
 *       ({@code attention.cu} runs one block per query token and head);</li>
 *   <li>CUDA graphs per padded decode batch size (a decode step is some 10 launches per layer,
 *       each building its parameter array through the FFM);</li>
 *   <li>fused kernels (residual add + RMSNorm, rotary + cache write), sized KV pool from a
 *       profiling forward under a memory-utilization share, device selection beyond device 0;</li>
 *   <li>the side-by-side benchmark of issue 4;</li>
 *   <li>faster multi-head latent attention and encoder attention: both run one block per
 *       (token, head) that re-reads the keys, where the query heads could share each read (the
 *       latent row is the same for every head) and prompts could take tensor cores.</li>
 * </ul>
 */
package dev.jvllm.cuda;
