package dev.jvllm.models;

import dev.jvllm.ImageInput;
import org.junit.jupiter.api.BeforeEach;

import java.nio.file.Path;

/** {@link InternVLGoldenTest} on the GPU: InternViT, the pixel shuffle, the projector and the language model through CUDA. */
class InternVLGoldenCudaTest extends InternVLGoldenTest {

    @BeforeEach
    void requireGpu() {
        RuntimeAssumptions.requireGpu();
    }

    /** The raw pixels: the GPU machine's runtime has no java.desktop to decode PNGs with. */
    @Override
    ImageInput image(Path png) {
        return LlavaGoldenTest.raw(png);
    }

    @Override
    String device() {
        return "cuda";
    }
}
