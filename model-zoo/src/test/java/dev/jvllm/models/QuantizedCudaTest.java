package dev.jvllm.models;

import dev.jvllm.weights.PackedIntCheckpoint.Format;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;


/**
 * Quantized checkpoints on the GPU: GPTQ and AWQ weights of 4 bits in groups of a multiple of 64
 * inputs stay 4-bit in device memory; the others are decoded at load, copied to the device, then
 * freed from host memory (the CUDA backend reads no host weights after load), so a model that read
 * them later would fail rather than answer as its twin does. Skipped, with the reason, where there is no GPU.
 */
class QuantizedCudaTest {


    @TempDir
    Path work;

    @BeforeEach
    void requireGpu() {
        RuntimeAssumptions.requireGpu();
    }

    @Test
    void gptqWithActOrderAnswersAsItsFloat32TwinOnTheGpu() throws Exception {
        PackedIntCheckpointTest.assertSameAnswers(work, Format.GPTQ, 4, 16, true, "cuda");
    }

    @Test
    void awqAnswersAsItsFloat32TwinOnTheGpu() throws Exception {
        PackedIntCheckpointTest.assertSameAnswers(work, Format.AWQ, 4, 16, false, "cuda");
    }

    /** Groups of 64 make whole tiles, so these stay 4-bit on the GPU and run through the tensor-core kernels in 16-bit. */
    @Test
    void gptqWithActOrderKeptFourBitAnswersAsItsTwinInFloat16() throws Exception {
        PackedIntCheckpointTest.assertSameAnswers(work, Format.GPTQ, 4, 64, true, "cuda", "float16", 2e-2);
    }

    @Test
    void awqKeptFourBitAnswersAsItsTwinInBfloat16() throws Exception {
        PackedIntCheckpointTest.assertSameAnswers(work, Format.AWQ, 4, 64, false, "cuda", "bfloat16", 5e-2);
    }

    @Test
    void gptqKeptFourBitInOneGroupAnswersAsItsFloat32Twin() throws Exception {
        PackedIntCheckpointTest.assertSameAnswers(work, Format.GPTQ_V2, 4, -1, false, "cuda");
    }

    /** GPT-2's Conv1D projections packed as GPTQ's Linears: 4-bit on the GPU, c_attn sliced into q, k and v on tiles. */
    @Test
    void gpt2KeptFourBitAnswersAsItsTwinInFloat16() throws Exception {
        PackedIntCheckpointTest.assertGpt2Answers(work, "cuda", "float16", 2e-2);
    }

    @Test
    void bitsAndBytesFourBitAnswersAsItsFloat32TwinOnTheGpu() throws Exception {
        BitsAndBytesCheckpointTest.assertFourBitAnswers(work, "cuda");
    }
}
