package dev.jvllm.cpu;

import dev.jvllm.spi.Activation;
import dev.jvllm.spi.Tensor;
import dev.jvllm.weights.Int4Weight;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * 4-bit weights kept 4-bit on the CPU: products by the packed rows (up to 4 rows of x) and by the
 * weight dequantized for the matrix kernel (more rows) against the same backend's product by the
 * weight's values as float32, with the Vector API's loops and the scalar ones; act-order inputs,
 * groups of 64 to 256 and one group, a bias, the activation and residual epilogues, a row view,
 * several products of one input.
 */
class Int4LinearTest {

    @ParameterizedTest
    @CsvSource({"false, 1, 48, 128, 64, false, false", "false, 3, 32, 256, 128, true, true", "false, 4, 16, 512, 256, false, true",
            "false, 5, 48, 128, 64, true, false", "false, 40, 32, 192, 64, false, true", "false, 2, 64, 320, 320, true, false",
            "true, 1, 32, 128, 64, true, true", "true, 7, 16, 256, 128, false, false"})
    void productsByFourBitWeightsEqualTheProductsByTheirValues(boolean scalar, int tokens, int rows, int cols, int group,
                                                               boolean actOrder, boolean withBias) {
        try (CpuBackend cpu = new CpuBackend(2, scalar ? new ScalarLoops("test") : InnerLoops.Selection.loadVectorLoops())) {
            Random random = new Random(rows + cols);
            try (Int4Weight packed = Int4TestWeights.randomInt4("w", rows, cols, group, actOrder, random)) {
                Tensor weight = cpu.int4Weight(packed), dense = cpu.constant(Int4TestWeights.dense(packed), rows, cols);
                assertEquals(rows, weight.rows());
                assertEquals(cols, weight.cols());
                float[] x = values(tokens * cols, random), bias = withBias ? values(rows, random) : null;
                Tensor input = cpu.constant(x, tokens, cols), b = bias == null ? null : cpu.constant(bias, 1, rows);
                assertClose(product(cpu, dense, input, b), product(cpu, weight, input, b), "plain");

                Tensor fromPacked = cpu.allocate(tokens, rows), fromDense = cpu.allocate(tokens, rows);
                cpu.linearActivation(Activation.SILU, input, weight, b, fromPacked);
                cpu.linearActivation(Activation.SILU, input, dense, b, fromDense);
                assertClose(cpu.toFloatArray(fromDense), cpu.toFloatArray(fromPacked), "activated");

                Tensor residual = cpu.constant(values(tokens * rows, random), tokens, rows);
                cpu.linearResidual(input, weight, b, residual, fromPacked);
                cpu.linearResidual(input, dense, b, residual, fromDense);
                assertClose(cpu.toFloatArray(fromDense), cpu.toFloatArray(fromPacked), "residual");

                Tensor[] views = {weight.rows(0, rows / 2), weight.rows(rows / 2, rows - rows / 2)};
                Tensor[] outs = {cpu.allocate(tokens, rows / 2), cpu.allocate(tokens, rows - rows / 2)};
                cpu.linears(input, views, new Tensor[2], outs);
                float[] whole = product(cpu, dense, input, null);
                for (int t = 0; t < tokens; t++) {
                    for (int r = 0; r < rows; r++) {
                        float got = r < rows / 2 ? cpu.toFloatArray(outs[0])[t * (rows / 2) + r]
                                : cpu.toFloatArray(outs[1])[t * (rows - rows / 2) + r - rows / 2];
                        assertEquals(whole[t * rows + r], got, 1e-4f * (1 + Math.abs(whole[t * rows + r])), "view row " + r);
                    }
                }
            }
        }
    }

    private static float[] product(CpuBackend cpu, Tensor weight, Tensor input, Tensor bias) {
        Tensor out = cpu.allocate(input.rows(), weight.rows());
        cpu.linear(input, weight, bias, out);
        return cpu.toFloatArray(out);
    }

    private static float[] values(int n, Random random) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) v[i] = (float) random.nextGaussian();
        return v;
    }

    private static void assertClose(float[] expected, float[] actual, String what) {
        assertEquals(expected.length, actual.length);
        double err = 0, norm = 0;
        for (int i = 0; i < expected.length; i++) {
            assertTrue(Float.isFinite(actual[i]), what + ": " + actual[i] + " at " + i);
            err += Math.pow(actual[i] - expected[i], 2);
            norm += Math.pow(expected[i], 2);
        }
        assertTrue(Math.sqrt(err / norm) < 1e-5, what + ": relative error " + Math.sqrt(err / norm));
    }
}
