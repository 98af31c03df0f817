package dev.jvllm.models;

import dev.jvllm.ImageInput;
import dev.jvllm.spi.BackendProvider;
import org.junit.jupiter.api.BeforeEach;

import java.nio.file.Path;
import java.util.ServiceLoader;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

/** {@link LlavaGoldenTest} on the GPU: the vision tower, projector and Llama through the CUDA backend. Skipped where there is no GPU. */
class LlavaGoldenCudaTest extends LlavaGoldenTest {

    private static final BackendProvider.Availability CUDA = ServiceLoader.load(BackendProvider.class).stream()
            .map(ServiceLoader.Provider::get).filter(p -> p.name().equals("cuda")).findFirst()
            .map(BackendProvider::availability)
            .orElse(BackendProvider.Availability.no("no \"cuda\" backend on the class path"));

    @BeforeEach
    void requireGpu() {
        assumeTrue(CUDA.available(), "no GPU: " + CUDA.reason());
    }

    /** The raw pixels: the GPU machine's runtime has no java.desktop to decode PNGs with. */
    @Override
    ImageInput image(Path png) {
        return raw(png);
    }

    @Override
    String device() {
        return "cuda";
    }
}
