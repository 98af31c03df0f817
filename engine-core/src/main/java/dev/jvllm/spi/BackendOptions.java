package dev.jvllm.spi;

import dev.jvllm.weights.DType;

/**
 * Options a backend is created with.
 *
 * @param threads        CPU threads for kernels (0: all available processors)
 * @param activationType the type to compute in where the backend offers a choice (the CUDA
 *                       backend: F32, BF16 or F16); null for the backend's default (float32). The
 *                       CPU backend always computes in float32.
 * @param deviceIndex    which of the backend's devices to run on ({@code cuda:1} gives 1), as its
 *                       driver numbers them; 0 for the first, and for backends of one device
 */
public record BackendOptions(int threads, DType activationType, int deviceIndex) {

    public BackendOptions {
        if (deviceIndex < 0) throw new IllegalArgumentException("deviceIndex " + deviceIndex + " is negative");
    }

    public BackendOptions(int threads, DType activationType) {
        this(threads, activationType, 0);
    }

    public BackendOptions(int threads) {
        this(threads, null);
    }

    public static BackendOptions defaults() {
        return new BackendOptions(0);
    }

    /** These options on device {@code index}. */
    public BackendOptions onDevice(int index) {
        return new BackendOptions(threads, activationType, index);
    }
}
