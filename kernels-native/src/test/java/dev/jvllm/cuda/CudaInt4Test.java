package dev.jvllm.cuda;

import dev.jvllm.spi.Activation;
import dev.jvllm.spi.Backend;
import dev.jvllm.spi.Tensor;
import dev.jvllm.weights.DType;
import dev.jvllm.weights.Int4Weight;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.List;
import java.util.Random;

import static dev.jvllm.cuda.CudaTestData.activations;
import static dev.jvllm.cuda.CudaTestData.assertClose;
import static dev.jvllm.cuda.CudaTestData.random;
import static dev.jvllm.cuda.CudaTestData.roundTo;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * 4-bit weights kept 4-bit on the GPU (quantized.cu) against the CPU's product by the same weights
 * decoded to float32: the tensor-core gemm_int4 kernels for up to 15 rows of x (fewer k tiles than
 * warps, more than a warp's ring holds, warps starting within a group), gemm_int4_wide from 16 to 128
 * (64 a launch; over several blocks and slices of k), the weight dequantized for cuBLAS beyond and for float32
 * activations; inputs in the checkpoint's order and reordered (act-order); stacked q/k/v and
 * [gate; up] weights. Skipped where no GPU is found.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class CudaInt4Test extends GpuAgainstCpuTest {

    private static final ValueLayout.OfInt WORD = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    @Override
    List<DType> activationTypes() {
        return List.of(DType.BF16, DType.F16, DType.F32);
    }

    @ParameterizedTest
    @CsvSource({"BF16, 1, 96, 512, 128, false, false", "BF16, 3, 96, 4096, 128, true, true", "F16, 8, 64, 14336, 128, false, false",
            "BF16, 9, 96, 512, 64, false, true", "F32, 1, 48, 128, 64, true, true", "F32, 20, 48, 128, 128, false, false",
            "BF16, 40, 256, 1024, 64, true, false", "F16, 5, 32, 256, 256, false, true", "BF16, 200, 64, 256, 128, false, true",
            "F16, 17, 48, 192, 64, true, false", "BF16, 128, 32, 128, 64, false, false", "F16, 2, 64, 14336, 128, false, false",
            "BF16, 2, 32, 128, 64, true, true", "BF16, 2, 48, 1536, 128, true, false", "BF16, 1, 64, 1024, 1024, false, true",
            "BF16, 12, 64, 2560, 256, true, true", "F16, 32, 48, 2560, 256, false, false", "F16, 15, 64, 2560, 256, true, true"})
    void productsByFourBitWeightsMatchTheCpusByTheirValues(DType type, int tokens, int rows, int cols, int group,
                                                           boolean actOrder, boolean withBias) {
        CudaBackend gpu = gpus.get(type);
        Random random = new Random(rows * 31L + cols);
        try (Int4Weight packed = randomInt4("w", rows, cols, group, actOrder, random)) {
            float[] x = roundTo(type, random(tokens * cols, 5));
            float[] bias = withBias ? roundTo(type, random(rows, 6)) : null;
            float[] expected = product(cpu, cpu.constant(dense(packed), rows, cols), x, tokens, bias, rows);
            Tensor weight = gpu.int4Weight(packed);
            assertEquals(rows, weight.rows());
            assertEquals(cols, weight.cols());
            assertClose(type + " " + tokens + " x " + rows + " x " + cols, expected, product(gpu, weight, x, tokens, bias, rows),
                    tolerance(type));
        }
    }

    @ParameterizedTest
    @CsvSource({"BF16, 1, 256, 64", "F16, 2, 256, 64", "BF16, 6, 256, 64", "BF16, 12, 256, 64", "F32, 1, 256, 64",
            "F16, 17, 256, 64", "BF16, 40, 256, 64", "F16, 130, 256, 64",
            // 40 k tiles: each of four warps refills its ring and starts within a group of 4 tiles
            "BF16, 1, 2560, 256", "F16, 2, 2560, 256", "BF16, 8, 2560, 256", "F16, 16, 2560, 256", "BF16, 32, 2560, 256"})
    void stackedProjectionsAndAGatedPairMatchTheCpu(DType type, int tokens, int cols, int group) {
        checkStackedAndGated(type, tokens, cols, group, 64, 32);
    }

    /**
     * The gemm_int4_wide kernels over more rows than a block's (a stacked q/k/v of 28 row tiles, a
     * gated pair of 9 tiles each: the last block holds fewer) in one slice of k and in several.
     */
    @ParameterizedTest
    @CsvSource({"BF16, 16, 256, 64", "F16, 40, 256, 128", "BF16, 64, 256, 128", "F16, 24, 2944, 128", "BF16, 64, 2944, 128",
            "BF16, 90, 1024, 256", "BF16, 16, 2944, 128"})
    void stackedAndGatedProductsOverSeveralWideBlocksMatchTheCpu(DType type, int tokens, int cols, int group) {
        long wide = gpuLaunches(type, Kernel.GEMM_INT4_WIDE_16, Kernel.GEMM_INT4_WIDE_32, Kernel.GEMM_INT4_WIDE_64);
        long wideGated = gpuLaunches(type, Kernel.GEMM_INT4_WIDE_GATED_16, Kernel.GEMM_INT4_WIDE_GATED_32, Kernel.GEMM_INT4_WIDE_GATED_64);
        checkStackedAndGated(type, tokens, cols, group, 160, 144);
        assertTrue(gpuLaunches(type, Kernel.GEMM_INT4_WIDE_16, Kernel.GEMM_INT4_WIDE_32, Kernel.GEMM_INT4_WIDE_64) > wide,
                "the stacked products took a gemm_int4_wide kernel");
        assertTrue(gpuLaunches(type, Kernel.GEMM_INT4_WIDE_GATED_16, Kernel.GEMM_INT4_WIDE_GATED_32, Kernel.GEMM_INT4_WIDE_GATED_64)
                > wideGated, "the gated pair took a gated gemm_int4_wide kernel");
    }

    /**
     * 16 to 128 rows of x by the gemm_int4_wide kernels (64 a launch): one slice of k with rows over
     * two blocks (17 row tiles: the last warp's second tile lies past the weight), k cut into slices
     * that start within groups (46 k tiles; one group of 64 tiles, many slices of it) whose sums
     * gemm_int4_reduce adds (asserted where the rows are one block: every device slices those), two
     * launches (the second of one or two rows).
     */
    @ParameterizedTest
    @CsvSource({"BF16, 64, 272, 256, 128, false, true", "F16, 33, 272, 256, 64, true, false", "BF16, 16, 48, 2944, 128, false, true",
            "F16, 64, 64, 2944, 128, true, false", "BF16, 48, 96, 2944, 128, true, true", "BF16, 65, 64, 1024, 128, false, false",
            "F16, 100, 32, 2048, 64, false, true", "BF16, 128, 272, 4096, 128, false, true", "F16, 16, 272, 2944, 128, true, true",
            "BF16, 16, 48, 4096, 4096, false, true", "F16, 40, 48, 4096, 1024, true, true", "BF16, 16, 32, 14336, 128, false, true",
            "F16, 66, 272, 2944, 64, true, true"})
    void manyRowsOfXTakeTheWideKernelsAndMatchTheCpu(DType type, int tokens, int rows, int cols, int group, boolean actOrder,
                                                     boolean withBias) {
        CudaBackend gpu = gpus.get(type);
        Random random = new Random(rows * 17L + cols + tokens);
        try (Int4Weight packed = randomInt4("w", rows, cols, group, actOrder, random)) {
            float[] x = roundTo(type, random(tokens * cols, 9));
            float[] bias = withBias ? roundTo(type, random(rows, 10)) : null;
            float[] expected = product(cpu, cpu.constant(dense(packed), rows, cols), x, tokens, bias, rows);
            long wide = gpuLaunches(type, Kernel.GEMM_INT4_WIDE_16, Kernel.GEMM_INT4_WIDE_32, Kernel.GEMM_INT4_WIDE_64);
            long reduced = gpuLaunches(type, Kernel.GEMM_INT4_REDUCE);
            assertClose(type + " " + tokens + " x " + rows + " x " + cols, expected, product(gpu, gpu.int4Weight(packed), x, tokens, bias, rows),
                    tolerance(type));
            assertEquals(Math.ceilDiv(tokens, 64),
                    gpuLaunches(type, Kernel.GEMM_INT4_WIDE_16, Kernel.GEMM_INT4_WIDE_32, Kernel.GEMM_INT4_WIDE_64) - wide,
                    "gemm_int4_wide launches, 64 rows of x each");
            if (rows <= 256 && cols / 64 / 4 >= 2) {
                assertEquals(Math.ceilDiv(tokens, 64), gpuLaunches(type, Kernel.GEMM_INT4_REDUCE) - reduced, "slices added by gemm_int4_reduce");
            }
        }
    }

    private long gpuLaunches(DType type, Kernel... kernels) {
        long total = 0;
        for (Kernel kernel : kernels) total += gpus.get(type).launches(kernel);
        return total;
    }

    private void checkStackedAndGated(DType type, int tokens, int cols, int group, int firstRows, int pairRows) {
        CudaBackend gpu = gpus.get(type);
        Random random = new Random(tokens);
        int[] widths = {firstRows, pairRows, pairRows};
        Int4Weight[] parts = new Int4Weight[3];
        for (int i = 0; i < 3; i++) parts[i] = randomInt4("p" + i, widths[i], cols, group, false, random);
        float[] x = roundTo(type, random(tokens * cols, 7));
        try {
            Tensor stacked = gpu.stackedInt4Weight(List.of(parts));
            assertInstanceOf(Int4CudaWeight.class, stacked);
            Tensor[] views = {stacked.rows(0, firstRows), stacked.rows(firstRows, pairRows), stacked.rows(firstRows + pairRows, pairRows)};
            Tensor input = activations(gpu, x, tokens, cols);
            Tensor[] outs = new Tensor[3];
            for (int i = 0; i < 3; i++) outs[i] = gpu.allocate(tokens, widths[i]);
            gpu.linears(input, views, new Tensor[3], outs);
            for (int i = 0; i < 3; i++) {
                float[] expected = product(cpu, cpu.constant(dense(parts[i]), widths[i], cols), x, tokens, null, widths[i]);
                assertClose("stacked part " + i, expected, gpu.toFloatArray(outs[i]), tolerance(type));
            }
            Tensor alone = gpu.allocate(tokens, pairRows);
            gpu.linear(input, views[2], null, alone);
            assertClose("a view after the first rows alone", product(cpu, cpu.constant(dense(parts[2]), pairRows, cols), x, tokens, null, pairRows),
                    gpu.toFloatArray(alone), tolerance(type));
            // parts 1 and 2 as gate and up
            Tensor cpuInput = activations(cpu, x, tokens, cols);
            for (Activation fn : List.of(Activation.SILU, Activation.GELU_TANH)) {
                Tensor gated = gpu.allocate(tokens, pairRows), cpuGated = cpu.allocate(tokens, pairRows);
                gpu.gatedLinear(fn, input, views[1], views[2], gpu.allocate(tokens, pairRows), gated);
                cpu.gatedLinear(fn, cpuInput, cpu.constant(dense(parts[1]), pairRows, cols), cpu.constant(dense(parts[2]), pairRows, cols),
                        cpu.allocate(tokens, pairRows), cpuGated);
                assertClose("gated pair, " + fn, cpu.toFloatArray(cpuGated), gpu.toFloatArray(gated), tolerance(type));
            }
            Tensor activated = gpu.allocate(tokens, firstRows), cpuActivated = cpu.allocate(tokens, firstRows);
            gpu.linearActivation(Activation.GELU_TANH, input, views[0], null, activated);
            cpu.linearActivation(Activation.GELU_TANH, cpuInput, cpu.constant(dense(parts[0]), firstRows, cols), null, cpuActivated);
            assertClose("activated", cpu.toFloatArray(cpuActivated), gpu.toFloatArray(activated), tolerance(type));
        } finally {
            for (Int4Weight part : parts) part.close();
        }
    }

    private static float[] product(Backend b, Tensor weight, float[] x, int tokens, float[] bias, int rows) {
        Tensor out = b.allocate(tokens, rows);
        b.linear(activations(b, x, tokens, weight.cols()), weight, bias == null ? null : b.constant(bias, 1, rows), out);
        return b.toFloatArray(out);
    }

    /** Random words, scales and zeros; with actOrder the inputs shuffled into the packed order. */
    static Int4Weight randomInt4(String name, int rows, int cols, int group, boolean actOrder, Random random) {
        Arena arena = Arena.ofShared();
        MemorySegment words = arena.allocate((long) rows * cols / 2, 16);
        for (long i = 0; i < (long) rows * cols / 8; i++) words.setAtIndex(WORD, i, random.nextInt());
        int groups = rows * (cols / group);
        float[] scales = new float[groups], zeros = new float[groups];
        for (int g = 0; g < groups; g++) {
            scales[g] = 0.01f + 0.05f * random.nextFloat();
            zeros[g] = random.nextInt(17);  // 0 to 16: GPTQ's stored zero less one reaches 16
        }
        int[] order = null;
        if (actOrder) {
            order = new int[cols];
            for (int i = 0; i < cols; i++) order[i] = i;
            for (int i = cols - 1; i > 0; i--) {
                int j = random.nextInt(i + 1), swap = order[i];
                order[i] = order[j];
                order[j] = swap;
            }
        }
        return new Int4Weight(name, rows, cols, group, words, scales, zeros, order, Path.of("random.safetensors"), arena);
    }

    /** The weight's elements [rows, cols] in the checkpoint's input order, as float32. */
    static float[] dense(Int4Weight w) {
        float[] out = new float[w.rows() * w.cols()];
        for (int r = 0; r < w.rows(); r++) {
            for (int i = 0; i < w.cols(); i++) {
                int word = w.words().getAtIndex(WORD, Int4Weight.wordIndex(w.cols(), r, i));
                int q = (word >>> Int4Weight.bitOf(r, i)) & 0xf;
                int g = r * w.groupsPerRow() + i / w.groupSize();
                int input = w.inputOrder() == null ? i : w.inputOrder()[i];
                out[r * w.cols() + input] = (q - w.zeros()[g]) * w.scales()[g];
            }
        }
        return out;
    }
}
