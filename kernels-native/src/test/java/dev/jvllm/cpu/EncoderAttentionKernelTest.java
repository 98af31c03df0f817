package dev.jvllm.cpu;

import dev.jvllm.engine.ForwardBatch;
import dev.jvllm.spi.AttentionParams;
import dev.jvllm.spi.Backend;
import dev.jvllm.spi.BackendOptions;
import dev.jvllm.spi.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

class EncoderAttentionKernelTest {

    private static float[] random(int n, long seed) {
        Random r = new Random(seed);
        float[] v = new float[n];
        for (int i = 0; i < n; i++) v[i] = (float) r.nextGaussian();
        return v;
    }

    private static ForwardBatch batch(int... lengths) {
        int total = 0;
        int[] starts = new int[lengths.length + 1];
        for (int s = 0; s < lengths.length; s++) {
            starts[s] = total;
            total += lengths[s];
        }
        starts[lengths.length] = total;
        int[] zeros = new int[total];
        int[] positions = new int[total];
        for (int s = 0; s < lengths.length; s++) {
            for (int p = 0; p < lengths[s]; p++) positions[starts[s] + p] = p;
        }
        return new ForwardBatch(zeros, positions, zeros, starts, lengths.clone(), new int[lengths.length][], 16, new int[0]);
    }

    /** Dense softmax(scale · q kᵀ) v per sequence and head, in double precision, with no mask. */
    private static double[] reference(float[] q, float[] k, float[] v, int[] lengths, AttentionParams p) {
        int qWidth = p.numHeads() * p.headDim(), kvWidth = p.numKvHeads() * p.headDim();
        int group = p.numHeads() / p.numKvHeads();
        int total = 0;
        for (int l : lengths) total += l;
        double[] out = new double[total * qWidth];
        int start = 0;
        for (int len : lengths) {
            for (int h = 0; h < p.numHeads(); h++) {
                int kvOff = (h / group) * p.headDim();
                for (int i = start; i < start + len; i++) {
                    double[] s = new double[len];
                    double max = Double.NEGATIVE_INFINITY;
                    for (int j = 0; j < len; j++) {
                        double dot = 0;
                        for (int d = 0; d < p.headDim(); d++) {
                            dot += (double) q[i * qWidth + h * p.headDim() + d] * k[(start + j) * kvWidth + kvOff + d];
                        }
                        s[j] = dot * p.scale();
                        if (p.logitSoftcap() > 0) s[j] = p.logitSoftcap() * Math.tanh(s[j] / p.logitSoftcap());
                        max = Math.max(max, s[j]);
                    }
                    double sum = 0;
                    for (int j = 0; j < len; j++) sum += s[j] = Math.exp(s[j] - max);
                    for (int d = 0; d < p.headDim(); d++) {
                        double acc = 0;
                        for (int j = 0; j < len; j++) acc += s[j] * v[(start + j) * kvWidth + kvOff + d];
                        out[i * qWidth + h * p.headDim() + d] = acc / sum;
                    }
                }
            }
            start += len;
        }
        return out;
    }

    private static void check(String path, AttentionParams params, int... lengths) {
        int total = 0;
        for (int l : lengths) total += l;
        int qWidth = params.numHeads() * params.headDim(), kvWidth = params.numKvHeads() * params.headDim();
        float[] q = random(total * qWidth, 1), k = random(total * kvWidth, 2), v = random(total * kvWidth, 3);
        float[] actual;
        try (CpuBackend backend = KernelPaths.backend(path)) {
            Tensor out = backend.allocate(total, qWidth);
            backend.encoderAttention(backend.constant(q, total, qWidth), backend.constant(k, total, kvWidth),
                    backend.constant(v, total, kvWidth), batch(lengths), params, out);
            actual = backend.toFloatArray(out);
        }
        double[] expected = reference(q, k, v, lengths, params);
        for (int i = 0; i < expected.length; i++) {
            assertEquals(expected[i], actual[i], 1e-5 * (1 + Math.abs(expected[i])), "element " + i);
        }
    }

    @ParameterizedTest
    @MethodSource("dev.jvllm.cpu.KernelPaths#paths")
    void everyTokenAttendsToEveryTokenOfItsOwnSequenceOnly(String path) {
        check(path, AttentionParams.causal(4, 4, 16), 1, 7, 33);
    }

    /** 70 and 131 keys fill several key panels and leave a partial one; 40 dimensions need two value panels. */
    @ParameterizedTest
    @MethodSource("dev.jvllm.cpu.KernelPaths#paths")
    void longSequencesAndWideHeadsSpanSeveralPanels(String path) {
        check(path, AttentionParams.causal(3, 3, 40), 70, 2, 131);
    }

    @ParameterizedTest
    @MethodSource("dev.jvllm.cpu.KernelPaths#paths")
    void groupedQueryHeadsShareTheirKeyValueHead(String path) {
        check(path, AttentionParams.causal(8, 2, 12), 5, 20);
    }

    @ParameterizedTest
    @MethodSource("dev.jvllm.cpu.KernelPaths#paths")
    void softcappedScoresFollowTheReference(String path) {
        check(path, new AttentionParams(2, 2, 8, 0.9f, 0, 3f, null), 9, 4);
    }

    @Test
    void mismatchedShapesAreRefusedNamingTheTensors() {
        try (Backend backend = new CpuBackendProvider().create(new BackendOptions(2))) {
            Tensor q = backend.allocate(3, 8);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> backend.encoderAttention(
                    q, backend.allocate(3, 4), backend.allocate(3, 8), batch(3), AttentionParams.causal(2, 2, 4), backend.allocate(3, 8)));
            assertEquals(true, e.getMessage().contains("encoderAttention"), e.getMessage());
        }
    }
}
