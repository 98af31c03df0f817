package dev.jvllm.cuda;

import dev.jvllm.cpu.CpuBackend;
import dev.jvllm.spi.Backend;
import dev.jvllm.spi.BackendOptions;
import dev.jvllm.spi.BackendProvider;
import dev.jvllm.weights.DType;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.TestInstance;

import java.lang.foreign.Arena;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * What the tests comparing CUDA kernels with the CPU backend's share: a CUDA backend per activation
 * type the class names and a CPU backend, opened once for the class and closed after it, and every
 * test reported skipped, with the reason, where no GPU is found.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
abstract class GpuAgainstCpuTest {

    /** Holds the test weights' host copies until the class is done. */
    final Arena arena = Arena.ofShared();
    private final BackendProvider.Availability availability = new CudaBackendProvider().availability();
    final Map<DType, CudaBackend> gpus = new EnumMap<>(DType.class);
    Backend cpu;

    /** The activation types this class opens a CUDA backend for. */
    abstract List<DType> activationTypes();

    /** What a GPU result may differ from the CPU's by: float32 to its rounding, the 16-bit types to 2e-2. */
    static double tolerance(DType type) {
        return type == DType.F32 ? 1e-5 : 2e-2;
    }

    /** This class's CUDA backend computing in {@code type}. */
    CudaBackend open(DType type) {
        return CudaBackend.open(0, type);
    }

    @BeforeAll
    void openBackends() {
        if (availability.available()) {
            for (DType type : activationTypes()) gpus.put(type, open(type));
            cpu = new CpuBackend(new BackendOptions(2));
        }
    }

    @BeforeEach
    void requireGpu() {
        assumeTrue(availability.available(), "no GPU: " + availability.reason());
    }

    @AfterAll
    void closeBackends() {
        gpus.values().forEach(CudaBackend::close);
        if (cpu != null) cpu.close();
        arena.close();
    }
}
