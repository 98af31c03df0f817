package dev.jvllm.spi;

import dev.jvllm.weights.DType;

/**
 * Options a backend is created with.
 *
 * @param threads        CPU threads for kernels (0: all available processors)
 * @param activationType the type to compute in where the backend offers a choice (the CUDA
 *                       backend: F32, BF16 or F16); null for the backend's default (float32). The
 *                       CPU backend always computes in float32.
 */
public record BackendOptions(int threads, DType activationType) {

    public BackendOptions(int threads) {
        this(threads, null);
    }

    public static BackendOptions defaults() {
        return new BackendOptions(0);
    }
}
