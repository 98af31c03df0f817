package dev.jvllm.models;

import dev.jvllm.ImageInput;
import org.junit.jupiter.api.BeforeEach;

import java.nio.file.Path;

/** {@link ImageMemoryReservationTest} on the GPU: the device's own memory, the CUDA backend's buffers. */
class ImageMemoryReservationCudaTest extends ImageMemoryReservationTest {

    @BeforeEach
    void requireGpu() {
        RuntimeAssumptions.requireGpu();
    }

    @Override
    ImageInput image(Path png) {
        return LlavaGoldenTest.raw(png);
    }

    @Override
    String device() {
        return "cuda";
    }
}
