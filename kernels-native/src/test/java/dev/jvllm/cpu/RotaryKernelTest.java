package dev.jvllm.cpu;

import dev.jvllm.spi.Tensor;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.SplittableRandom;
import java.util.stream.Stream;

import static dev.jvllm.cpu.KernelPaths.assertClose;
import static dev.jvllm.cpu.KernelPaths.gaussian;
import static org.junit.jupiter.api.Assertions.assertThrows;

/** Rotary position embedding in both pair layouts, full and partial, against a direct rotation. */
class RotaryKernelTest {

    private static final int HEADS = 3;
    private static final int HEAD_DIM = 10;
    private static final int MAX_POSITIONS = 50;

    static Stream<Arguments> cases() {
        Stream.Builder<Arguments> cases = Stream.builder();
        for (String path : new String[]{"vector", "scalar"}) {
            for (boolean neox : new boolean[]{true, false}) {
                for (int rotaryDim : new int[]{HEAD_DIM, 6}) {
                    cases.add(Arguments.of(path, neox, rotaryDim));
                }
            }
        }
        return cases.build();
    }

    @ParameterizedTest(name = "{0} neox={1} rotaryDim={2}")
    @MethodSource("cases")
    void rotatesEachPairByItsPositionAngle(String path, boolean neox, int rotaryDim) {
        int half = rotaryDim / 2;
        float[] table = new float[MAX_POSITIONS * rotaryDim];
        for (int p = 0; p < MAX_POSITIONS; p++) {
            for (int i = 0; i < half; i++) {
                double angle = p * Math.pow(10000, -2.0 * i / rotaryDim);
                table[p * rotaryDim + i] = (float) Math.cos(angle);
                table[p * rotaryDim + half + i] = (float) Math.sin(angle);
            }
        }
        int[] positions = {0, 7, 49, 3};
        int width = HEADS * HEAD_DIM;
        float[] x = gaussian(new SplittableRandom(rotaryDim), positions.length * width);
        double[] expected = new double[x.length];
        for (int i = 0; i < x.length; i++) {
            expected[i] = x[i];
        }
        for (int t = 0; t < positions.length; t++) {
            for (int h = 0; h < HEADS; h++) {
                int head = t * width + h * HEAD_DIM;
                for (int i = 0; i < half; i++) {
                    double cos = table[positions[t] * rotaryDim + i];
                    double sin = table[positions[t] * rotaryDim + half + i];
                    int a = head + (neox ? i : 2 * i);
                    int b = neox ? a + half : a + 1;
                    expected[a] = x[a] * cos - x[b] * sin;
                    expected[b] = x[b] * cos + x[a] * sin;
                }
            }
        }
        try (CpuBackend backend = KernelPaths.backend(path)) {
            Tensor tensor = backend.constant(x, positions.length, width);
            backend.rotary(tensor, HEADS, HEAD_DIM, rotaryDim, neox, backend.constant(table, MAX_POSITIONS, rotaryDim),
                    backend.indices(positions));
            assertClose(expected, backend.toFloatArray(tensor), "rotary");
        }
    }

    @ParameterizedTest
    @MethodSource("dev.jvllm.cpu.KernelPaths#paths")
    void refusesPositionsBeyondTheTable(String path) {
        try (CpuBackend backend = KernelPaths.backend(path)) {
            Tensor cosSin = backend.constant(new float[4 * HEAD_DIM], 4, HEAD_DIM);
            Tensor x = backend.allocate(1, HEADS * HEAD_DIM);
            assertThrows(IndexOutOfBoundsException.class,
                    () -> backend.rotary(x, HEADS, HEAD_DIM, HEAD_DIM, true, cosSin, backend.indices(new int[]{4})));
        }
    }
}
