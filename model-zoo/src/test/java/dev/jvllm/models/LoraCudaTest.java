package dev.jvllm.models;

import dev.jvllm.spi.BackendProvider;
import org.junit.jupiter.api.BeforeEach;

import java.util.ServiceLoader;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

/** {@link LoraTest} on the GPU: adapters through the CUDA backend against the merged models. Skipped where there is no GPU. */
class LoraCudaTest extends LoraTest {

    private static final BackendProvider.Availability CUDA = ServiceLoader.load(BackendProvider.class).stream()
            .map(ServiceLoader.Provider::get).filter(p -> p.name().equals("cuda")).findFirst()
            .map(BackendProvider::availability)
            .orElse(BackendProvider.Availability.no("no \"cuda\" backend on the class path"));

    @BeforeEach
    void requireGpu() {
        assumeTrue(CUDA.available(), "no GPU: " + CUDA.reason());
    }

    @Override
    String device() {
        return "cuda";
    }
}
