package dev.jvllm.encdec;

import dev.jvllm.models.RuntimeAssumptions;
import org.junit.jupiter.api.BeforeEach;

/** {@link EncoderDecoderGoldenTest} on the GPU: the encoders, the cross-attention and relative-bias kernels and the decoders through the CUDA backend. */
class EncoderDecoderGoldenCudaTest extends EncoderDecoderGoldenTest {

    @BeforeEach
    void requireGpu() {
        RuntimeAssumptions.requireGpu();
    }

    @Override
    String device() {
        return "cuda";
    }
}
