package dev.jvllm.cpu;

import dev.jvllm.spi.Tensor;
import dev.jvllm.weights.DType;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.SplittableRandom;
import java.util.stream.Stream;

import static dev.jvllm.cpu.KernelPaths.assertClose;
import static dev.jvllm.cpu.KernelPaths.gaussian;
import static org.junit.jupiter.api.Assertions.assertThrows;

/** {@code linear} against a double-precision x·Wᵀ + b, for every weight type, path and shape kind. */
class LinearKernelTest {

    static Stream<Arguments> cases() {
        // Odd widths leave vector tails; the widest takes the eight-row decode loop with 19 rows,
        // not a multiple of eight; 1, 2 and 5 tokens cover decode, a short token block and
        // several blocks with a remainder. From PANEL_MIN_TOKENS on, F32 weights take the packed
        // panels: 9 tokens (one six-row tile and a short one), 103 (two row blocks, the second
        // short); 133 outputs leave a partial last panel, 70 need several panels whatever the width.
        int[][] shapes = {{37, 13}, {133, 37}, {LinearKernel.WIDE_INPUT + 3, 19}, {16, 8}, {29, 133}, {64, 70}};
        int[] tokenCounts = {1, 2, 5, LinearKernel.PANEL_MIN_TOKENS, 9, LinearKernel.ROW_BLOCK + 7};
        Stream.Builder<Arguments> cases = Stream.builder();
        for (String path : new String[]{"vector", "scalar"}) {
            for (DType type : new DType[]{DType.F32, DType.BF16, DType.F16}) {
                for (int[] shape : shapes) {
                    for (int tokens : tokenCounts) {
                        cases.add(Arguments.of(path, type, shape[0], shape[1], tokens));
                    }
                }
            }
        }
        return cases.build();
    }

    @ParameterizedTest(name = "{0} {1} in={2} out={3} T={4}")
    @MethodSource("cases")
    void matchesReferenceWithAndWithoutBias(String path, DType type, int in, int out, int tokens) {
        SplittableRandom random = new SplittableRandom(in * 31L + out * 7L + tokens);
        KernelPaths.TestWeight w = KernelPaths.weight("w", type, gaussian(random, out * in), out, in);
        KernelPaths.TestWeight b = KernelPaths.weight("b", type, gaussian(random, out), out);
        float[] x = gaussian(random, tokens * in);
        try (CpuBackend backend = KernelPaths.backend(path)) {
            Tensor weight = backend.weight(w.tensor());
            Tensor input = backend.constant(x, tokens, in);
            for (boolean withBias : new boolean[]{false, true}) {
                Tensor result = backend.allocate(tokens, out);
                backend.linear(input, weight, withBias ? backend.weight(b.tensor()) : null, result);
                double[] expected = new double[tokens * out];
                double[] magnitude = new double[tokens * out];
                for (int t = 0; t < tokens; t++) {
                    for (int o = 0; o < out; o++) {
                        double sum = withBias ? b.values()[o] : 0;
                        double abs = withBias ? Math.abs(b.values()[o]) : 0;
                        for (int i = 0; i < in; i++) {
                            double term = w.values()[o * in + i] * x[t * in + i];
                            sum += term;
                            abs += Math.abs(term);
                        }
                        expected[t * out + o] = sum;
                        magnitude[t * out + o] = abs;
                    }
                }
                assertClose(expected, backend.toFloatArray(result), magnitude, "linear, bias " + withBias);
            }
        }
    }

    @ParameterizedTest
    @MethodSource("dev.jvllm.cpu.KernelPaths#paths")
    void writesIntoRowViewsOfLargerTensors(String path) {
        SplittableRandom random = new SplittableRandom(5);
        int in = 41;
        int out = 23;
        KernelPaths.TestWeight w = KernelPaths.weight("w", DType.BF16, gaussian(random, out * in), out, in);
        float[] x = gaussian(random, 6 * in);
        try (CpuBackend backend = KernelPaths.backend(path)) {
            Tensor all = backend.allocate(6, out);
            Tensor input = backend.constant(x, 6, in);
            backend.linear(input.rows(2, 3), backend.weight(w.tensor()), null, all.rows(1, 3));
            float[] result = backend.toFloatArray(all);
            double[] expected = new double[6 * out];
            double[] magnitude = new double[6 * out];
            for (int t = 0; t < 3; t++) {
                for (int o = 0; o < out; o++) {
                    for (int i = 0; i < in; i++) {
                        double term = w.values()[o * in + i] * x[(t + 2) * in + i];
                        expected[(t + 1) * out + o] += term;
                        magnitude[(t + 1) * out + o] += Math.abs(term);
                    }
                }
            }
            assertClose(expected, result, magnitude, "linear into rows 1..3 of 6");
        }
    }

    @ParameterizedTest
    @MethodSource("dev.jvllm.cpu.KernelPaths#paths")
    void refusesMismatchedShapes(String path) {
        SplittableRandom random = new SplittableRandom(6);
        KernelPaths.TestWeight w = KernelPaths.weight("proj", DType.F32, gaussian(random, 8 * 5), 8, 5);
        try (CpuBackend backend = KernelPaths.backend(path)) {
            Tensor weight = backend.weight(w.tensor());
            IllegalArgumentException wrongInput = assertThrows(IllegalArgumentException.class,
                    () -> backend.linear(backend.allocate(2, 6), weight, null, backend.allocate(2, 8)));
            org.junit.jupiter.api.Assertions.assertTrue(wrongInput.getMessage().contains("proj"), wrongInput.getMessage());
            assertThrows(IllegalArgumentException.class,
                    () -> backend.linear(backend.allocate(2, 5), weight, null, backend.allocate(2, 7)));
        }
    }
}
