package dev.jvllm.models;

import dev.jvllm.ImageInput;
import org.junit.jupiter.api.BeforeEach;

import java.nio.file.Path;


/** {@link LlavaGoldenTest} on the GPU: the vision tower, projector and Llama through the CUDA backend. Skipped where there is no GPU. */
class LlavaGoldenCudaTest extends LlavaGoldenTest {


    @BeforeEach
    void requireGpu() {
        RuntimeAssumptions.requireGpu();
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
