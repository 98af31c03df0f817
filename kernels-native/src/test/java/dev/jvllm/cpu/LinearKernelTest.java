package dev.jvllm.cpu;

import dev.jvllm.spi.Activation;
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
        // not a multiple of eight; 1, 2 and 5 tokens cover decode, the two-token rows (every output
        // count here but 8 and 64 leaves rows past the last four) and several blocks with a remainder
        // (5, 6 and 7: a last block of one and two tokens made apart, of three padded). From PANEL_MIN_TOKENS on, F32 weights take the packed
        // panels: 9 tokens (one six-row tile and a short one), 103 (two row blocks, the second
        // short); 133 outputs leave a partial last panel, 70 need several panels whatever the width.
        // Other weights take token panels from a panel's width of tokens on (103 tokens: several
        // panels, the last partial), the input in chunks of DEPTH_CHUNK (the two widest inputs here:
        // several chunks, the last short).
        int[][] shapes = {{37, 13}, {133, 37}, {LinearKernel.WIDE_INPUT + 3, 19}, {16, 8}, {29, 133}, {64, 70},
                {2 * LinearKernel.DEPTH_CHUNK + 6, 11}};
        int[] tokenCounts = {1, 2, 5, 6, 7, LinearKernel.PANEL_MIN_TOKENS, 9, LinearKernel.ROW_BLOCK + 7};
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

    static Stream<Arguments> rowViewCases() {
        // 2 rows take the two-token rows, 3 the in-place tiles, 11 rows of F32 the packed panels.
        Stream.Builder<Arguments> cases = Stream.builder();
        KernelPaths.paths().forEach(path -> {
            for (DType type : new DType[]{DType.BF16, DType.F32}) {
                for (int rows : new int[]{2, 3, 11}) {
                    cases.add(Arguments.of(path, type, rows));
                }
            }
        });
        return cases.build();
    }

    @ParameterizedTest(name = "{0} {1} rows={2}")
    @MethodSource("rowViewCases")
    void writesIntoRowViewsOfLargerTensors(String path, DType type, int rows) {
        SplittableRandom random = new SplittableRandom(5);
        int in = 41;
        int out = 23;
        int total = rows + 3;
        KernelPaths.TestWeight w = KernelPaths.weight("w", type, gaussian(random, out * in), out, in);
        float[] x = gaussian(random, total * in);
        try (CpuBackend backend = KernelPaths.backend(path)) {
            Tensor all = backend.allocate(total, out);
            Tensor input = backend.constant(x, total, in);
            backend.linear(input.rows(2, rows), backend.weight(w.tensor()), null, all.rows(1, rows));
            float[] result = backend.toFloatArray(all);
            double[] expected = new double[total * out];
            double[] magnitude = new double[total * out];
            for (int t = 0; t < rows; t++) {
                for (int o = 0; o < out; o++) {
                    for (int i = 0; i < in; i++) {
                        double term = w.values()[o * in + i] * x[(t + 2) * in + i];
                        expected[(t + 1) * out + o] += term;
                        magnitude[(t + 1) * out + o] += Math.abs(term);
                    }
                }
            }
            assertClose(expected, result, magnitude, "linear into rows 1.." + rows + " of " + total);
        }
    }

    static Stream<Arguments> fusedCases() {
        Stream.Builder<Arguments> cases = Stream.builder();
        for (String path : new String[]{"vector", "scalar"}) {
            for (DType type : new DType[]{DType.F32, DType.BF16}) {
                for (int tokens : new int[]{1, 2, 5, LinearKernel.PANEL_MIN_TOKENS + 1, LinearKernel.ROW_BLOCK + 7}) {
                    cases.add(Arguments.of(path, type, tokens));
                }
            }
        }
        return cases.build();
    }

    /** 133 outputs leave a partial last panel, whose padding columns must not reach the epilogue's rows. */
    @ParameterizedTest(name = "{0} {1} T={2}")
    @MethodSource("fusedCases")
    void fusedActivationAndResidualEqualTheSeparateKernels(String path, DType type, int tokens) {
        SplittableRandom random = new SplittableRandom(tokens * 13L + type.ordinal());
        int in = 37;
        int out = 133;
        KernelPaths.TestWeight w = KernelPaths.weight("w", type, gaussian(random, out * in), out, in);
        KernelPaths.TestWeight b = KernelPaths.weight("b", type, gaussian(random, out), out);
        try (CpuBackend backend = KernelPaths.backend(path)) {
            Tensor weight = backend.weight(w.tensor());
            Tensor bias = backend.weight(b.tensor());
            Tensor input = backend.constant(gaussian(random, tokens * in), tokens, in);
            Tensor residual = backend.constant(gaussian(random, tokens * out), tokens, out);
            Tensor separate = backend.allocate(tokens, out);
            backend.linear(input, weight, bias, separate);
            Tensor activated = backend.allocate(tokens, out);
            backend.activation(Activation.GELU, separate, activated);
            Tensor added = backend.allocate(tokens, out);
            backend.add(separate, residual, added);

            Tensor fusedActivated = backend.allocate(tokens, out);
            backend.linearActivation(Activation.GELU, input, weight, bias, fusedActivated);
            Tensor fusedAdded = backend.allocate(tokens, out);
            backend.linearResidual(input, weight, bias, residual, fusedAdded);

            assertClose(widened(backend.toFloatArray(activated)), backend.toFloatArray(fusedActivated), "linear then GELU");
            assertClose(widened(backend.toFloatArray(added)), backend.toFloatArray(fusedAdded), "linear plus residual");
        }
    }

    /** Three projections of different widths (the last with a partial panel, one without bias) in one kernel. */
    @ParameterizedTest(name = "{0} {1} T={2}")
    @MethodSource("fusedCases")
    void projectionsOfOneInputEqualSeparateLinears(String path, DType type, int tokens) {
        SplittableRandom random = new SplittableRandom(tokens * 17L + type.ordinal());
        int in = 37;
        int[] widths = {64, 32, 45};
        try (CpuBackend backend = KernelPaths.backend(path)) {
            Tensor input = backend.constant(gaussian(random, tokens * in), tokens, in);
            Tensor[] weights = new Tensor[widths.length];
            Tensor[] biases = new Tensor[widths.length];
            Tensor[] together = new Tensor[widths.length];
            for (int i = 0; i < widths.length; i++) {
                weights[i] = backend.weight(KernelPaths.weight("w" + i, type, gaussian(random, widths[i] * in), widths[i], in).tensor());
                biases[i] = i == 1 ? null : backend.weight(KernelPaths.weight("b" + i, type, gaussian(random, widths[i]), widths[i]).tensor());
                together[i] = backend.allocate(tokens, widths[i]);
            }
            backend.linears(input, weights, biases, together);
            for (int i = 0; i < widths.length; i++) {
                Tensor alone = backend.allocate(tokens, widths[i]);
                backend.linear(input, weights[i], biases[i], alone);
                assertClose(widened(backend.toFloatArray(alone)), backend.toFloatArray(together[i]), "projection " + i);
            }
        }
    }

    @ParameterizedTest
    @MethodSource("dev.jvllm.cpu.KernelPaths#paths")
    void aResidualOverlappingTheOutputIsRefused(String path) {
        SplittableRandom random = new SplittableRandom(8);
        KernelPaths.TestWeight w = KernelPaths.weight("w", DType.F32, gaussian(random, 4 * 4), 4, 4);
        try (CpuBackend backend = KernelPaths.backend(path)) {
            Tensor x = backend.constant(gaussian(random, 2 * 4), 2, 4);
            Tensor out = backend.allocate(2, 4);
            assertThrows(IllegalArgumentException.class,
                    () -> backend.linearResidual(x, backend.weight(w.tensor()), null, out, out));
        }
    }

    private static double[] widened(float[] values) {
        double[] result = new double[values.length];
        for (int i = 0; i < values.length; i++) {
            result[i] = values[i];
        }
        return result;
    }

    @ParameterizedTest
    @MethodSource("dev.jvllm.cpu.KernelPaths#paths")
    void weightsPastThePanelBudgetKeepTheInPlaceTiles(String path) {
        SplittableRandom random = new SplittableRandom(7);
        int in = 53;
        int out = 45;
        int tokens = 20;
        KernelPaths.TestWeight w = KernelPaths.weight("w", DType.F32, gaussian(random, out * in), out, in);
        KernelPaths.TestWeight b = KernelPaths.weight("b", DType.F32, gaussian(random, out), out);
        float[] x = gaussian(random, tokens * in);
        try (CpuBackend backend = KernelPaths.backend(path); WorkerPool pool = new WorkerPool(2)) {
            InnerLoops loops = path.equals("vector") ? InnerLoops.Selection.loadVectorLoops() : new ScalarLoops("test");
            CpuTensor weight = (CpuTensor) backend.weight(w.tensor());
            CpuTensor bias = (CpuTensor) backend.weight(b.tensor());
            CpuTensor input = (CpuTensor) backend.constant(x, tokens, in);
            CpuTensor packed = (CpuTensor) backend.allocate(tokens, out);
            CpuTensor inPlace = (CpuTensor) backend.allocate(tokens, out);
            new LinearKernel(loops, pool).run(input, weight, bias, packed);
            new LinearKernel(loops, pool, 0).run(input, (CpuTensor) backend.weight(w.tensor()), bias, inPlace);
            assertClose(widened(backend.toFloatArray(packed)), backend.toFloatArray(inPlace),
                    "in-place tiles against packed panels");
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
