/**
 * The CUDA backend, through the foreign function and memory API (no JNI, no native build step).
 *
 * <ul>
 *   <li>Bindings, one class per library, each loaded once and failing with where it looked:
 *       {@code CudaDriver} ({@code libcuda.so.1}), {@code Nvrtc}
 *       ({@code libnvrtc.so.13}), {@code Cublas} ({@code libcublas.so.13}), {@code CublasLt}
 *       ({@code libcublasLt.so.13}, for the tuned products of {@code TunedProducts}). Every
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
 * <p>What it leaves for later, roughly in order of what it would gain (measurements in
 * benchmarks/results/README.md):
 * <ul>
 *   <li>CUDA graphs per padded decode batch size: a decode step issues some 14 operations per layer,
 *       each costing the host 5-10 µs through the FFM and the driver;</li>
 *   <li>fused kernels (residual add + RMSNorm, rotary + cache write, SiLU × up into the down
 *       projection's input), device selection beyond device 0;</li>
 *   <li>a flash_prefill with asynchronous copies and more warps (it reaches 18% occupancy at 167
 *       registers), and a decode kernel nearer the bandwidth at large batches;</li>
 *   <li>faster multi-head latent attention and encoder attention: both run one block per
 *       (token, head) that re-reads the keys, where the query heads could share each read (the
 *       latent row is the same for every head) and prompts could take tensor cores;</li>
 *   <li>a grouped expert matmul (mixture-of-experts layers run one product per expert).</li>
 * </ul>
 */
package dev.jvllm.cuda;
