package dev.jvllm.bart;

import dev.jvllm.models.RuntimeAssumptions;
import org.junit.jupiter.api.BeforeEach;

/** {@link BartGoldenTest} on the GPU: the encoder, the cross-attention kernel and the decoder through the CUDA backend. */
class BartGoldenCudaTest extends BartGoldenTest {

    @BeforeEach
    void requireGpu() {
        RuntimeAssumptions.requireGpu();
    }

    @Override
    String device() {
        return "cuda";
    }
}
