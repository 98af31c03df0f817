package dev.jvllm.models;

import dev.jvllm.weights.PackedIntCheckpoint.Format;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;


/**
 * Quantized checkpoints on the GPU: weights decoded at load, copied to the device, then freed from
 * host memory (the CUDA backend reads no host weights after load), so a model that read them later
 * would fail rather than answer as its float32 twin does. Skipped, with the reason, where there is no GPU.
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

    @Test
    void bitsAndBytesFourBitAnswersAsItsFloat32TwinOnTheGpu() throws Exception {
        BitsAndBytesCheckpointTest.assertFourBitAnswers(work, "cuda");
    }
}
