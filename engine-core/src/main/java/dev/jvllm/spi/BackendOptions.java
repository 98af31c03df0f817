package dev.jvllm.spi;

/**
 * Options a backend is created with.
 *
 * @param threads CPU threads for kernels (0: all available processors)
 */
public record BackendOptions(int threads) {

    public static BackendOptions defaults() {
        return new BackendOptions(0);
    }
}
