package dev.jvllm.models;

import dev.jvllm.spi.BackendProvider;

import java.util.ServiceLoader;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

/** Whether the CUDA backend can run here: the GPU twins of the CPU tests skip, with the reason, where it cannot. */
final class Gpu {

    private static final BackendProvider.Availability CUDA = ServiceLoader.load(BackendProvider.class).stream()
            .map(ServiceLoader.Provider::get).filter(p -> p.name().equals("cuda")).findFirst()
            .map(BackendProvider::availability)
            .orElse(BackendProvider.Availability.no("no \"cuda\" backend on the class path"));

    private Gpu() {
    }

    /** Skips the calling test where there is no usable GPU, naming why. */
    static void require() {
        assumeTrue(CUDA.available(), "no GPU: " + CUDA.reason());
    }
}
