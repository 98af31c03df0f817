package dev.jvllm.cpu;

import dev.jvllm.spi.Tensor;
import dev.jvllm.weights.DType;
import dev.jvllm.weights.WeightTensor;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.SplittableRandom;
import java.util.stream.Stream;

import static dev.jvllm.cpu.KernelPaths.assertClose;
import static dev.jvllm.cpu.KernelPaths.gaussian;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Norms, elementwise kernels and row copies against double-precision references. */
class RowKernelsTest {

    private static final int[] WIDTHS = {37, 133};

    static Stream<Arguments> pathsAndTypes() {
        Stream.Builder<Arguments> cases = Stream.builder();
        for (String path : new String[]{"vector", "scalar"}) {
            for (DType type : new DType[]{DType.F32, DType.BF16, DType.F16}) {
                cases.add(Arguments.of(path, type));
            }
        }
        return cases.build();
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("pathsAndTypes")
    void rmsNormScalesByInverseRootMeanSquareTimesOffsetWeight(String path, DType type) {
        for (int n : WIDTHS) {
            int rows = 5;
            SplittableRandom random = new SplittableRandom(n);
            float[] x = gaussian(random, rows * n);
            KernelPaths.TestWeight weight = KernelPaths.weight("norm", type, gaussian(random, n), n);
            float eps = 1e-5f;
            for (float offset : new float[]{0f, 1f}) {
                double[] expected = new double[rows * n];
                for (int r = 0; r < rows; r++) {
                    double meanSquare = 0;
                    for (int i = 0; i < n; i++) {
                        meanSquare += (double) x[r * n + i] * x[r * n + i];
                    }
                    double inverse = 1 / Math.sqrt(meanSquare / n + eps);
                    for (int i = 0; i < n; i++) {
                        expected[r * n + i] = x[r * n + i] * inverse * (weight.values()[i] + offset);
                    }
                }
                try (CpuBackend backend = KernelPaths.backend(path)) {
                    Tensor out = backend.allocate(rows, n);
                    backend.rmsNorm(backend.constant(x, rows, n), backend.weight(weight.tensor()), eps, offset, out);
                    assertClose(expected, backend.toFloatArray(out), "rmsNorm n=" + n + " offset " + offset);
                }
            }
        }
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("pathsAndTypes")
    void layerNormCentersScalesAndShifts(String path, DType type) {
        for (int n : WIDTHS) {
            int rows = 4;
            SplittableRandom random = new SplittableRandom(n + 1);
            float[] x = gaussian(random, rows * n);
            for (int i = 0; i < x.length; i++) {
                x[i] = 3 + 2 * x[i]; // a mean far from zero exercises the centering
            }
            KernelPaths.TestWeight weight = KernelPaths.weight("ln.weight", type, gaussian(random, n), n);
            KernelPaths.TestWeight bias = KernelPaths.weight("ln.bias", type, gaussian(random, n), n);
            float eps = 1e-5f;
            for (boolean withBias : new boolean[]{false, true}) {
                double[] expected = new double[rows * n];
                for (int r = 0; r < rows; r++) {
                    double mean = 0;
                    for (int i = 0; i < n; i++) {
                        mean += x[r * n + i];
                    }
                    mean /= n;
                    double variance = 0;
                    for (int i = 0; i < n; i++) {
                        variance += (x[r * n + i] - mean) * (x[r * n + i] - mean);
                    }
                    double inverse = 1 / Math.sqrt(variance / n + eps);
                    for (int i = 0; i < n; i++) {
                        expected[r * n + i] = (x[r * n + i] - mean) * inverse * weight.values()[i]
                                + (withBias ? bias.values()[i] : 0);
                    }
                }
                try (CpuBackend backend = KernelPaths.backend(path)) {
                    Tensor out = backend.allocate(rows, n);
                    backend.layerNorm(backend.constant(x, rows, n), backend.weight(weight.tensor()),
                            withBias ? backend.weight(bias.tensor()) : null, eps, out);
                    assertClose(expected, backend.toFloatArray(out), "layerNorm n=" + n + " bias " + withBias);
                }
            }
        }
    }

    @ParameterizedTest
    @MethodSource("dev.jvllm.cpu.KernelPaths#paths")
    void addWorksInPlace(String path) {
        SplittableRandom random = new SplittableRandom(3);
        int rows = 3;
        int n = 133;
        float[] a = gaussian(random, rows * n);
        float[] b = gaussian(random, rows * n);
        double[] expected = new double[rows * n];
        for (int i = 0; i < expected.length; i++) {
            expected[i] = (double) a[i] + b[i];
        }
        try (CpuBackend backend = KernelPaths.backend(path)) {
            Tensor left = backend.constant(a, rows, n);
            backend.add(left, backend.constant(b, rows, n), left);
            assertClose(expected, backend.toFloatArray(left), "add into its first input");
        }
    }

    @ParameterizedTest
    @MethodSource("dev.jvllm.cpu.KernelPaths#paths")
    void argmaxRowsPicksEachRowsFirstGreatestAndNeverNaN(String path) {
        SplittableRandom random = new SplittableRandom(5);
        int n = 133; // a tail past any vector width
        float[][] rows = new float[7][];
        for (int r = 0; r < rows.length; r++) {
            rows[r] = gaussian(random, n);
        }
        rows[0][n - 1] = 9f;                       // greatest in the tail
        rows[1][17] = 9f;                          // a tie: the first one counts
        rows[1][90] = 9f;
        rows[2][3] = Float.NaN;                    // NaN is never the answer
        rows[2][40] = 9f;
        java.util.Arrays.fill(rows[3], Float.NEGATIVE_INFINITY); // nothing greater than -inf: 0
        rows[3][5] = Float.NaN;
        rows[4][0] = -0f;                          // -0 before 0 among the greatest: -0's index
        for (int i = 1; i < n; i++) rows[4][i] = -1f;
        rows[4][60] = 0f;
        rows[5][0] = Float.POSITIVE_INFINITY;
        rows[6][n / 2] = Float.MAX_VALUE;
        float[] all = new float[rows.length * n];
        int[] expected = new int[rows.length];
        for (int r = 0; r < rows.length; r++) {
            System.arraycopy(rows[r], 0, all, r * n, n);
            float best = Float.NEGATIVE_INFINITY;
            for (int i = 0; i < n; i++) {
                if (rows[r][i] > best) {
                    best = rows[r][i];
                    expected[r] = i;
                }
            }
        }
        assertArrayEquals(new int[]{n - 1, 17, 40, 0, 0, 0, n / 2}, expected, "the test's own reference");
        try (CpuBackend backend = KernelPaths.backend(path)) {
            Tensor logits = backend.constant(all, rows.length, n);
            assertArrayEquals(expected, backend.argmaxRows(logits));
            // A view of later rows: the rows are found where the view starts.
            assertArrayEquals(java.util.Arrays.copyOfRange(expected, 2, 5), backend.argmaxRows(logits.rows(2, 3)));
        }
    }

    @ParameterizedTest
    @MethodSource("dev.jvllm.cpu.KernelPaths#paths")
    void siluMulGatesUp(String path) {
        SplittableRandom random = new SplittableRandom(4);
        int rows = 2;
        int n = 133;
        float[] gate = gaussian(random, rows * n);
        float[] up = gaussian(random, rows * n);
        gate[0] = 30f;   // saturates to the identity
        gate[1] = -30f;  // saturates to zero
        double[] expected = new double[rows * n];
        for (int i = 0; i < expected.length; i++) {
            expected[i] = gate[i] / (1 + Math.exp(-gate[i])) * up[i];
        }
        try (CpuBackend backend = KernelPaths.backend(path)) {
            Tensor out = backend.allocate(rows, n);
            backend.siluMul(backend.constant(gate, rows, n), backend.constant(up, rows, n), out);
            assertClose(expected, backend.toFloatArray(out), "siluMul");
        }
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("pathsAndTypes")
    void embeddingWidensTheChosenRows(String path, DType type) {
        SplittableRandom random = new SplittableRandom(5);
        int vocab = 11;
        int n = 37;
        KernelPaths.TestWeight table = KernelPaths.weight("embed", type, gaussian(random, vocab * n), vocab, n);
        int[] ids = {3, 0, 10, 3, 7};
        double[] expected = new double[ids.length * n];
        for (int t = 0; t < ids.length; t++) {
            System.arraycopy(table.values(), ids[t] * n, expected, t * n, n);
        }
        try (CpuBackend backend = KernelPaths.backend(path)) {
            Tensor out = backend.allocate(ids.length, n);
            backend.embedding(backend.weight(table.tensor()), backend.indices(ids), out);
            assertClose(expected, backend.toFloatArray(out), "embedding");
            assertThrows(IndexOutOfBoundsException.class,
                    () -> backend.embedding(backend.weight(table.tensor()), backend.indices(new int[]{vocab}),
                            backend.allocate(1, n)));
        }
    }

    @ParameterizedTest
    @MethodSource("dev.jvllm.cpu.KernelPaths#paths")
    void gatherRowsCopiesActivationRows(String path) {
        SplittableRandom random = new SplittableRandom(6);
        int n = 37;
        float[] x = gaussian(random, 4 * n);
        int[] rows = {2, 2, 0};
        float[] expected = new float[rows.length * n];
        for (int i = 0; i < rows.length; i++) {
            System.arraycopy(x, rows[i] * n, expected, i * n, n);
        }
        try (CpuBackend backend = KernelPaths.backend(path)) {
            Tensor out = backend.allocate(rows.length, n);
            backend.gatherRows(backend.constant(x, 4, n), backend.indices(rows), out);
            assertArrayEquals(expected, backend.toFloatArray(out));
        }
    }

    @ParameterizedTest
    @MethodSource("dev.jvllm.cpu.KernelPaths#paths")
    void halfPrecisionSpecialValuesWidenExactly(String path) {
        short[] halves = {0x0000, (short) 0x8000, 0x0001, 0x03FF, 0x0400, 0x3C00, (short) 0xBC00, 0x7BFF,
                (short) 0xFBFF, 0x7C00, (short) 0xFC00, 0x7E00, 0x7C01, 0x3555, 0x0200, (short) 0x8001, 0x1234};
        float[] expected = new float[halves.length];
        MemorySegment data = Arena.ofAuto().allocate(2L * halves.length);
        for (int i = 0; i < halves.length; i++) {
            data.set(Elements.SHORT, 2L * i, halves[i]);
            expected[i] = Float.float16ToFloat(halves[i]);
        }
        WeightTensor tensor = new WeightTensor("halves", DType.F16, new long[]{halves.length}, data, Path.of("test"));
        try (CpuBackend backend = KernelPaths.backend(path)) {
            float[] actual = backend.toFloatArray(backend.weight(tensor));
            for (int i = 0; i < halves.length; i++) {
                String what = "half 0x" + Integer.toHexString(halves[i] & 0xFFFF) + " widened to " + actual[i];
                if (Float.isNaN(expected[i])) {
                    assertTrue(Float.isNaN(actual[i]), what);
                } else {
                    assertEquals(Float.floatToRawIntBits(expected[i]), Float.floatToRawIntBits(actual[i]), what);
                }
            }
        }
    }
}
