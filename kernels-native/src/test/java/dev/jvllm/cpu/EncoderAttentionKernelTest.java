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
                        if (p.relativeBias() != null) {
                            int distance = p.relativeBias().maxDistance();
                            int relative = Math.max(-distance, Math.min(distance, j - (i - start)));
                            s[j] += p.relativeBias().values()[h * (2 * distance + 1) + relative + distance];
                        }
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

    /**
     * Cross-attention: sequences of 1, 3 and 2 queries over rows [40, 45), [3, 20) and [0, 1) of one
     * keys tensor of 50 rows, in any order and apart: each query sees exactly its range, unmasked.
     */
    @ParameterizedTest
    @MethodSource("dev.jvllm.cpu.KernelPaths#paths")
    void crossAttentionReadsEachSequencesOwnRangeOfKeys(String path) {
        AttentionParams params = AttentionParams.causal(4, 2, 16);
        int[] queries = {1, 3, 2};
        int[] ranges = {40, 5, 3, 17, 0, 1};
        int rows = 50, qWidth = 64, kvWidth = 32, total = 6;
        float[] q = random(total * qWidth, 4), k = random(rows * kvWidth, 5), v = random(rows * kvWidth, 6);
        float[] actual;
        try (CpuBackend backend = KernelPaths.backend(path)) {
            Tensor out = backend.allocate(total, qWidth);
            backend.crossAttention(backend.constant(q, total, qWidth), backend.constant(k, rows, kvWidth),
                    backend.constant(v, rows, kvWidth), ranges, 17, batch(queries), params, out);
            actual = backend.toFloatArray(out);
        }
        int query = 0;
        for (int s = 0; s < queries.length; s++) {
            float[] keys = java.util.Arrays.copyOfRange(k, ranges[2 * s] * kvWidth, (ranges[2 * s] + ranges[2 * s + 1]) * kvWidth);
            float[] values = java.util.Arrays.copyOfRange(v, ranges[2 * s] * kvWidth, (ranges[2 * s] + ranges[2 * s + 1]) * kvWidth);
            for (int i = 0; i < queries[s]; i++, query++) {
                // One query against its range: the dense reference of a "sequence" of that query and those keys.
                float[] one = java.util.Arrays.copyOfRange(q, query * qWidth, (query + 1) * qWidth);
                double[] expected = crossReference(one, keys, values, ranges[2 * s + 1], params);
                for (int d = 0; d < qWidth; d++) {
                    assertEquals(expected[d], actual[query * qWidth + d], 1e-5 * (1 + Math.abs(expected[d])),
                            "sequence " + s + ", query " + i + ", element " + d);
                }
            }
        }
    }

    /** softmax(scale · q kᵀ) v of one query row over {@code count} key rows. */
    private static double[] crossReference(float[] q, float[] k, float[] v, int count, AttentionParams p) {
        int kvWidth = p.numKvHeads() * p.headDim(), group = p.numHeads() / p.numKvHeads();
        double[] out = new double[p.numHeads() * p.headDim()];
        for (int h = 0; h < p.numHeads(); h++) {
            int kvOff = h / group * p.headDim();
            double[] s = new double[count];
            double max = Double.NEGATIVE_INFINITY, sum = 0;
            for (int j = 0; j < count; j++) {
                double dot = 0;
                for (int d = 0; d < p.headDim(); d++) dot += (double) q[h * p.headDim() + d] * k[j * kvWidth + kvOff + d];
                s[j] = dot * p.scale();
                max = Math.max(max, s[j]);
            }
            for (int j = 0; j < count; j++) sum += s[j] = Math.exp(s[j] - max);
            for (int d = 0; d < p.headDim(); d++) {
                double acc = 0;
                for (int j = 0; j < count; j++) acc += s[j] * v[j * kvWidth + kvOff + d];
                out[h * p.headDim() + d] = acc / sum;
            }
        }
        return out;
    }

    @Test
    void crossAttentionRefusesARangeOutsideTheKeys() {
        try (CpuBackend backend = KernelPaths.backend(KernelPaths.paths().findFirst().orElseThrow())) {
            AttentionParams params = AttentionParams.causal(2, 2, 8);
            Tensor x = backend.allocate(1, 16);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> backend.crossAttention(
                    x, backend.allocate(10, 16), backend.allocate(10, 16), new int[]{8, 3}, 10, batch(1), params, backend.allocate(1, 16)));
            assertEquals(true, e.getMessage().contains("not within the 10 rows"), e.getMessage());
            IllegalArgumentException longer = assertThrows(IllegalArgumentException.class, () -> backend.crossAttention(
                    x, backend.allocate(10, 16), backend.allocate(10, 16), new int[]{2, 6}, 5, batch(1), params, backend.allocate(1, 16)));
            assertEquals(true, longer.getMessage().contains("longest range given, 5"), longer.getMessage());
        }
    }

    /** T5's encoder: a learned bias by the distance from the query to the key within the sequence, both ways, clamped past 4. */
    @ParameterizedTest
    @MethodSource("dev.jvllm.cpu.KernelPaths#paths")
    void aRelativeBiasIsAddedByTheDistanceWithinEachSequence(String path) {
        AttentionParams params = new AttentionParams(4, 2, 16, 1f, 0, 0f, null)
                .withRelativeBias(PagedAttentionTest.relativeBias(4, 4, new java.util.SplittableRandom(9)));
        check(path, params, 1, 7, 13);
    }
}
