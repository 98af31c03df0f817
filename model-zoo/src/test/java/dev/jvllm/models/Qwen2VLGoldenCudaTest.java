package dev.jvllm.models;

import dev.jvllm.ImageInput;
import org.junit.jupiter.api.BeforeEach;

import java.nio.file.Path;

/** {@link Qwen2VLGoldenTest} on the GPU: the vision tower, M-RoPE and Qwen2 through the CUDA backend (decode graphs included). */
class Qwen2VLGoldenCudaTest extends Qwen2VLGoldenTest {

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
