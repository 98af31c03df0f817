package dev.jvllm.cuda;

import dev.jvllm.sampling.Sampler;
import dev.jvllm.spi.Backend;
import dev.jvllm.spi.Tensor;
import dev.jvllm.weights.DType;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.util.Arrays;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * sample_rows (sampling.cu) draws, for each row of logits on the device, the token the host's
 * {@link Sampler#drawPlainly} draws from the same logits with the same uniform number: greedy rows,
 * temperature alone, min-p, top-k, top-p and all together, on peaked and near-flat rows of a small
 * and of Llama 3's vocabulary. Skipped where no GPU is found.
 */
class CudaSamplingTest extends GpuAgainstCpuTest {

    @Override
    List<DType> activationTypes() {
        return List.of(DType.BF16, DType.F32);
    }

    @ParameterizedTest
    @CsvSource({"BF16, 32000, 3.0, 24", "BF16, 128256, 3.0, 24", "BF16, 128256, 0.05, 24", "F32, 32000, 3.0, 24",
            "F32, 50000, 0.05, 24", "BF16, 32000, 3.0, 150"})
    void rowsDrawnOnTheDeviceAreThoseTheHostDraws(DType type, int vocab, double spread, int rows) {
        // 150 rows: three launches of at most 64.
        CudaBackend gpu = gpus.get(type);
        Random random = new Random(vocab + (long) (spread * 100));
        float[] values = new float[rows * vocab];
        for (int i = 0; i < values.length; i++) values[i] = (float) (random.nextGaussian() * spread);
        Tensor logits = CudaTestData.activations(gpu, values, rows, vocab);  // the activation type, as a model's logits
        float[] onDevice = gpu.toFloatArray(logits);  // the values the kernel reads, rounded to the type
        float[] temperatures = new float[rows], minPs = new float[rows];
        int[] topKs = new int[rows];
        double[] topPs = new double[rows], uniforms = new double[rows];
        for (int r = 0; r < rows; r++) {
            int kind = r % 6;
            temperatures[r] = kind == 0 ? 0f : 0.5f + random.nextFloat();
            topKs[r] = kind == 2 || kind == 5 ? 1 + random.nextInt(60) : 0;
            topPs[r] = kind == 3 || kind == 5 ? 0.3 + 0.69 * random.nextDouble() : 1;
            minPs[r] = kind == 4 || kind == 5 ? 0.01f + 0.2f * random.nextFloat() : 0f;
            uniforms[r] = kind == 0 ? 0 : random.nextDouble();
        }
        Backend.PlainSampling sampling = new Backend.PlainSampling(temperatures, topKs, topPs, minPs, uniforms);
        Backend.SampledRows drawn = gpu.sampleRowsAsync(logits, sampling);
        assertTrue(drawn.feedable(), "the rows stay on the device for the next step's token ids");
        int[] expected = new int[rows];
        for (int r = 0; r < rows; r++) {
            expected[r] = Sampler.drawPlainly(Arrays.copyOfRange(onDevice, r * vocab, (r + 1) * vocab), temperatures[r],
                    topKs[r], topPs[r], minPs[r], uniforms[r]);
        }
        assertArrayEquals(expected, drawn.await());
    }
}
