package dev.jvllm.cpu;

import dev.jvllm.weights.DType;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.lang.foreign.MemorySegment;
import java.util.Arrays;
import java.util.SplittableRandom;
import java.util.stream.Stream;

import static dev.jvllm.cpu.KernelPaths.assertClose;
import static dev.jvllm.cpu.KernelPaths.gaussian;

/**
 * Every tile of {@link WeightLoops}, called directly, against a double-precision reference: the
 * linear kernel reaches some tiles only for some types or under a flag (three rows of four
 * tokens), and the vector path's loops are one source compiled per type.
 */
class WeightLoopsTest {

    /** Elements between one row's end and the next row, so that a tile must step by its stride, not by n. */
    private static final int ROW_GAP = 3;

    static Stream<Arguments> cases() {
        Stream.Builder<Arguments> cases = Stream.builder();
        for (String path : new String[]{"vector", "scalar"}) {
            for (DType type : new DType[]{DType.F32, DType.BF16, DType.F16}) {
                // Widths below a vector, with vector tails, and several unrolled steps.
                for (int n : new int[]{1, 7, 16, 37, 64, 133, 300}) {
                    cases.add(Arguments.of(path, type, n));
                }
            }
        }
        return cases.build();
    }

    @ParameterizedTest(name = "{0} {1} n={2}")
    @MethodSource("cases")
    void everyTileEqualsTheDotsOfItsRowsAndTokens(String path, DType type, int n) {
        InnerLoops loops = path.equals("vector") ? InnerLoops.Selection.loadVectorLoops() : new ScalarLoops("test");
        WeightLoops rows = loops.weights(type);
        SplittableRandom random = new SplittableRandom(type.ordinal() * 1000L + n);
        int stride = n + ROW_GAP;
        // Eight rows starting one element in, so no row starts at the segment's first element.
        KernelPaths.TestWeight weight = KernelPaths.weight("w", type, gaussian(random, 1 + 8 * stride), 1 + 8 * stride);
        MemorySegment w = weight.tensor().data();
        long first = 1;
        // Four tokens at scattered starts in one array, the last at its very end.
        int[] xs = {2, 5 + n, 9 + 2 * n, 11 + 3 * n};
        float[] x = gaussian(random, xs[3] + n);
        float[] dots = new float[16];

        rows.dotEightRows(w, first, stride, x, xs[0], n, dots);
        check(weight, x, n, first, stride, new int[]{0, 1, 2, 3, 4, 5, 6, 7}, new int[]{xs[0]}, dots, "dotEightRows");
        dots[0] = rows.dot(w, first + stride, x, xs[1], n);
        check(weight, x, n, first, stride, new int[]{1}, new int[]{xs[1]}, dots, "dot");
        rows.dotTwoTokens(w, first + 2 * stride, x, xs[1], xs[3], n, dots);
        check(weight, x, n, first, stride, new int[]{2}, new int[]{xs[1], xs[3]}, dots, "dotTwoTokens");
        rows.dotFourRowsTwoTokens(w, first + stride, stride, x, xs[2], xs[0], n, dots);
        check(weight, x, n, first, stride, new int[]{1, 2, 3, 4}, new int[]{xs[2], xs[0]}, dots, "dotFourRowsTwoTokens");
        rows.dotTwoRowsFourTokens(w, first + 6 * stride, stride, x, xs[0], xs[1], xs[2], xs[3], n, dots);
        check(weight, x, n, first, stride, new int[]{6, 7}, xs, dots, "dotTwoRowsFourTokens");
        rows.dotTwoRowsFourTokens(w, first + 5 * stride, 0, x, xs[3], xs[2], xs[2], xs[0], n, dots);
        check(weight, x, n, first, stride, new int[]{5, 5}, new int[]{xs[3], xs[2], xs[2], xs[0]}, dots,
                "dotTwoRowsFourTokens, one row twice");
        rows.dotThreeRowsFourTokens(w, first + 3 * stride, stride, x, xs[1], xs[0], xs[3], xs[2], n, dots);
        check(weight, x, n, first, stride, new int[]{3, 4, 5}, new int[]{xs[1], xs[0], xs[3], xs[2]}, dots,
                "dotThreeRowsFourTokens");

        float[] widened = new float[n + 2];
        rows.widen(w, first + 7 * stride, widened, 2, n);
        double[] expected = new double[n + 2];
        for (int i = 0; i < n; i++) {
            expected[2 + i] = weight.values()[(int) first + 7 * stride + i];
        }
        assertClose(expected, widened, "widen");
    }

    /**
     * Asserts that {@code dots[r × tokens + t]}, the order of every tile, is row {@code rowsUsed[r]}
     * dotted with the x at {@code tokenStarts[t]}.
     */
    private static void check(KernelPaths.TestWeight weight, float[] x, int n, long first, int stride, int[] rowsUsed,
                              int[] tokenStarts, float[] dots, String what) {
        int count = rowsUsed.length * tokenStarts.length;
        double[] expected = new double[count];
        double[] magnitude = new double[count];
        for (int r = 0; r < rowsUsed.length; r++) {
            for (int t = 0; t < tokenStarts.length; t++) {
                int at = r * tokenStarts.length + t;
                for (int i = 0; i < n; i++) {
                    double term = weight.values()[(int) first + rowsUsed[r] * stride + i] * x[tokenStarts[t] + i];
                    expected[at] += term;
                    magnitude[at] += Math.abs(term);
                }
            }
        }
        float[] actual = Arrays.copyOf(dots, count);
        assertClose(expected, actual, magnitude, what + " n=" + n);
    }
}
