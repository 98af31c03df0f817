package dev.jvllm.cuda;

import dev.jvllm.sampling.Sampler;
import dev.jvllm.spi.Backend;
import dev.jvllm.spi.Tensor;
import dev.jvllm.weights.DType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.util.Arrays;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
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
            "F32, 50000, 0.05, 24", "BF16, 32000, 3.0, 150", "BF16, 128256, 3.0, 1", "BF16, 128256, 0.05, 6",
            "F32, 1000, 3.0, 5"})
    void rowsDrawnOnTheDeviceAreThoseTheHostDraws(DType type, int vocab, double spread, int rows) {
        // 150 rows: three launches of at most 64, the last with more blocks a row than the first two;
        // 1-24 rows: clusters of 8 or 4 blocks a row (on compute capability 9.0 and later).
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

    @Test
    void aRowTakesAsManyBlocksAsFillTheMultiprocessorsOnce() {
        CudaBackend gpu = gpus.get(DType.F32);
        int sms = gpu.context().multiprocessors;
        for (int rows : new int[] {1, 2, 16, 17, 33, 64, 65, 200}) {
            int cluster = gpu.sampleCluster(rows);
            if (gpu.context().computeMajor < 9) {
                assertEquals(1, cluster, "no clusters before compute capability 9.0");
                continue;
            }
            assertTrue(cluster == 1 || rows * cluster <= sms, rows + " rows, " + cluster + " blocks each, " + sms + " SMs");
            assertTrue(cluster == 8 || rows * cluster * 2 > sms, rows + " rows could take " + 2 * cluster + " blocks each");
        }
    }
}
