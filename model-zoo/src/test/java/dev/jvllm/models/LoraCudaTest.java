package dev.jvllm.models;

import org.junit.jupiter.api.BeforeEach;



/** {@link LoraTest} on the GPU: adapters through the CUDA backend against the merged models. Skipped where there is no GPU. */
class LoraCudaTest extends LoraTest {


    @BeforeEach
    void requireGpu() {
        RuntimeAssumptions.requireGpu();
    }

    @Override
    String device() {
        return "cuda";
    }
}
