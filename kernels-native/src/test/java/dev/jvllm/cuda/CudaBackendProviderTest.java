package dev.jvllm.cuda;

import dev.jvllm.spi.Backend;
import dev.jvllm.spi.BackendOptions;
import dev.jvllm.spi.BackendProvider;
import dev.jvllm.spi.Backends;
import org.junit.jupiter.api.Test;

import java.util.ServiceLoader;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Runs everywhere: with or without a GPU the provider is found and says whether it can run. */
class CudaBackendProviderTest {

    private static BackendProvider cudaProvider() {
        return ServiceLoader.load(BackendProvider.class).stream().map(ServiceLoader.Provider::get)
                .filter(p -> p.name().equals("cuda")).findFirst().orElseThrow();
    }

    @Test
    void isRegisteredAndPreferredOverTheCpu() {
        BackendProvider cuda = cudaProvider();
        assertEquals(CudaBackendProvider.class, cuda.getClass());
        assertTrue(cuda.priority() > new dev.jvllm.cpu.CpuBackendProvider().priority());
    }

    @Test
    void unavailabilityComesWithItsReason() {
        BackendProvider.Availability availability = cudaProvider().availability();
        if (!availability.available()) {
            assertFalse(availability.reason().isBlank());
            assertTrue(availability.reason().matches("(?s).*(not found|no CUDA device|CUDA_ERROR|native access).*"),
                    availability.reason());
        }
    }

    @Test
    void autoPicksCudaWhereAvailableAndTheCpuElsewhere() {
        boolean gpu = cudaProvider().availability().available();
        try (Backend backend = Backends.create("auto", new BackendOptions(1))) {
            assertEquals(gpu ? "cuda" : "cpu", backend.name());
        }
    }
}
