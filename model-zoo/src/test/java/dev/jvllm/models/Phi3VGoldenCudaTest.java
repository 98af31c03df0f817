package dev.jvllm.models;

import dev.jvllm.ImageInput;
import org.junit.jupiter.api.BeforeEach;

import java.nio.file.Path;

/** {@link Phi3VGoldenTest} on the GPU: the CLIP tower, the merged rows' gather and Phi-3 through the CUDA backend. */
class Phi3VGoldenCudaTest extends Phi3VGoldenTest {

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
