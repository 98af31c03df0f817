/**
 * The CPU backend: {@link dev.jvllm.cpu.CpuBackend}, registered as "cpu" by
 * {@link dev.jvllm.cpu.CpuBackendProvider}.
 *
 * <p>Layout: {@code CpuBackend} checks arguments and runs the simple kernels; {@code LinearKernel}
 * and {@code PagedAttentionKernel} hold the two heavy ones; {@code WorkerPool} is the only place
 * threads are used; {@code InnerLoops} and {@code WeightLoops} are the arithmetic, implemented by
 * {@code ScalarLoops} and by the {@code Vector*} classes, which alone touch the incubating Vector
 * API and are loaded by name only when its module is present.
 */
package dev.jvllm.cpu;
