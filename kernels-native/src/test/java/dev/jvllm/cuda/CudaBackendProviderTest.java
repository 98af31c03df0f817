package dev.jvllm.cuda;

import dev.jvllm.JvllmException;
import dev.jvllm.spi.Backend;
import dev.jvllm.spi.BackendOptions;
import dev.jvllm.spi.BackendProvider;
import dev.jvllm.spi.Backends;
import org.junit.jupiter.api.Test;

import java.util.ServiceLoader;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeFalse;

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
        assumeFalse(availability.available(), "CUDA runs here: there is no reason to check");
        assertFalse(availability.reason().isBlank());
        assertTrue(availability.reason().matches("(?s).*(not found|no CUDA device|CUDA_ERROR|native access).*"),
                availability.reason());
    }

    /**
     * "cuda:N" picks a GPU by index: N = 0 runs where a GPU is; an index past the last names how many
     * there are; without a GPU the error says why none runs. Malformed devices name themselves.
     */
    @Test
    void aDeviceIndexPicksTheGpuOrSaysWhyNot() {
        boolean gpu = cudaProvider().availability().available();
        if (gpu) {
            try (Backend backend = Backends.create("cuda:0", new BackendOptions(1))) {
                assertEquals("cuda", backend.name());
            }
            int count = CudaDriver.get().deviceCount();
            int last = count - 1;
            try (Backend backend = Backends.create("cuda:" + last, new BackendOptions(1))) {
                CudaTensor values = (CudaTensor) backend.constant(new float[]{1, 2, 3, 4}, 1, 4);
                assertEquals(last, CudaDriver.get().pointerDeviceOrdinal(values.address()),
                        "a tensor of the backend on cuda:" + last + " lives in that device's memory");
            }
            JvllmException past = assertThrows(JvllmException.class, () -> Backends.create("cuda:" + count, new BackendOptions(1)));
            assertTrue(past.getMessage().contains("CUDA device " + count + " does not exist (" + count + " found)"), past.getMessage());
        } else {
            JvllmException none = assertThrows(JvllmException.class, () -> Backends.create("cuda:0", new BackendOptions(1)));
            assertTrue(none.getMessage().startsWith("no backend for device 'cuda:0'; cuda: "), none.getMessage());
        }
        for (String malformed : new String[]{"cuda:", "cuda:one", "cuda:-1", "auto:1", ":1"}) {
            JvllmException refused = assertThrows(JvllmException.class, () -> Backends.create(malformed, new BackendOptions(1)));
            assertTrue(refused.getMessage().startsWith("device '" + malformed + "': "), refused.getMessage());
        }
        JvllmException cpu = assertThrows(JvllmException.class, () -> Backends.create("cpu:1", new BackendOptions(1)));
        assertEquals("device 'cpu:1': the cpu backend has one device; use 'cpu'", cpu.getMessage());
        try (Backend backend = Backends.create("cpu:0", new BackendOptions(1))) {
            assertEquals("cpu", backend.name());
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
