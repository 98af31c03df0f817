package dev.jvllm.encdec;

import dev.jvllm.models.RuntimeAssumptions;
import dev.jvllm.weights.DType;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

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

    /**
     * In bfloat16 the cross-attention runs through paged_decode (each encoder input's kept rows start
     * at a block's start): the logits stay within bf16's rounding of the float32 goldens at every position.
     */
    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"bart", "mbart", "t5", "t5-gated"})
    void bf16LogitsStayNearTransformersFloat32Ones(String name) {
        assertLogitsWithin(name, DType.BF16, 5e-2);
    }
}
