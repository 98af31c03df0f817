package dev.jvllm.cpu;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.SplittableRandom;
import java.util.stream.Stream;

import static dev.jvllm.cpu.KernelPaths.assertClose;
import static dev.jvllm.cpu.KernelPaths.gaussian;

/**
 * The grouped attention loops ({@link InnerLoops#rowDots}, {@link InnerLoops#weightedRows}) on
 * both paths against a plain double reference, over head counts that leave remainders of the
 * four-head tiles and widths that leave remainders of every vector tile, with scattered rows.
 */
class AttentionLoopsTest {

    static Stream<Arguments> cases() {
        Stream.Builder<Arguments> cases = Stream.builder();
        for (String path : new String[]{"vector", "scalar"}) {
            for (int heads : new int[]{1, 3, 4, 6, 8}) {
                for (int n : new int[]{1, 7, 16, 20, 37, 64, 96, 131}) {
                    cases.add(Arguments.of(path, heads, n, 13));
                }
            }
            cases.add(Arguments.of(path, 4, 64, 1));
            cases.add(Arguments.of(path, 5, 64, 0));
        }
        return cases.build();
    }

    @ParameterizedTest(name = "{0} heads={1} n={2} rows={3}")
    @MethodSource("cases")
    void matchReference(String path, int heads, int n, int count) {
        InnerLoops loops = path.equals("vector") ? InnerLoops.Selection.loadVectorLoops() : new ScalarLoops("test");
        SplittableRandom random = new SplittableRandom(heads * 1000L + n * 10L + count);
        int slotWidth = n + 11;
        int slots = 40;
        long offset = 5;
        MemorySegment cache = Arena.ofAuto().allocate((long) slots * slotWidth * Float.BYTES, 64);
        float[] stored = gaussian(random, slots * slotWidth);
        MemorySegment.copy(stored, 0, cache, Elements.FLOAT, 0, stored.length);
        int rowIndex = 2;
        long[] rows = new long[rowIndex + count];
        for (int j = 0; j < rows.length; j++) {
            rows[j] = (long) random.nextInt(slots) * slotWidth;
        }
        int qIndex = 3;
        int qStride = n + 2;
        float[] q = gaussian(random, qIndex + heads * qStride);
        int outIndex = 1;
        int outStride = count + 3;
        float[] dots = new float[outIndex + heads * outStride];
        loops.rowDots(cache, rows, rowIndex, offset, count, q, qIndex, qStride, heads, n, dots, outIndex, outStride);
        double[] expectedDots = new double[dots.length];
        double[] dotScale = new double[dots.length];
        java.util.Arrays.fill(dotScale, 1);
        float[] gotDots = dots.clone();
        for (int h = 0; h < heads; h++) {
            for (int j = 0; j < count; j++) {
                double sum = 0;
                double magnitude = 1;
                for (int i = 0; i < n; i++) {
                    double term = (double) stored[(int) (rows[rowIndex + j] + offset) + i] * q[qIndex + h * qStride + i];
                    sum += term;
                    magnitude += Math.abs(term);
                }
                expectedDots[outIndex + h * outStride + j] = sum;
                dotScale[outIndex + h * outStride + j] = magnitude;
            }
        }
        assertClose(expectedDots, gotDots, dotScale, "rowDots");

        int pStride = count + 2;
        float[] p = gaussian(random, 1 + heads * pStride);
        float[] scales = gaussian(random, heads);
        int vOutStride = n + 5;
        float[] out = new float[outIndex + heads * vOutStride];
        loops.weightedRows(p, 1, pStride, heads, cache, rows, rowIndex, offset, count, n, scales, out, outIndex,
                vOutStride);
        double[] expected = new double[out.length];
        double[] scale = new double[out.length];
        java.util.Arrays.fill(scale, 1);
        for (int h = 0; h < heads; h++) {
            for (int i = 0; i < n; i++) {
                double sum = 0;
                double magnitude = 1;
                for (int j = 0; j < count; j++) {
                    double term = (double) p[1 + h * pStride + j] * stored[(int) (rows[rowIndex + j] + offset) + i];
                    sum += term;
                    magnitude += Math.abs(term);
                }
                expected[outIndex + h * vOutStride + i] = sum * scales[h];
                scale[outIndex + h * vOutStride + i] = magnitude * Math.max(1, Math.abs(scales[h]));
            }
        }
        assertClose(expected, out, scale, "weightedRows");
    }
}
