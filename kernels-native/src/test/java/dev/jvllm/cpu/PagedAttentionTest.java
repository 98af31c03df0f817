package dev.jvllm.cpu;

import dev.jvllm.engine.ForwardBatch;
import dev.jvllm.spi.AttentionParams;
import dev.jvllm.spi.KvCache;
import dev.jvllm.spi.KvCacheSpec;
import dev.jvllm.spi.Tensor;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.SplittableRandom;
import java.util.stream.Stream;

import static dev.jvllm.cpu.KernelPaths.assertClose;
import static dev.jvllm.cpu.KernelPaths.gaussian;
import static org.junit.jupiter.api.Assertions.assertThrows;

/**
 * Paged attention over two engine steps against dense attention over each sequence's whole
 * history. Blocks are handed out in shuffled order, so every sequence's context is scattered
 * across the cache. Step 1 prefills two sequences; step 2 mixes a prefill chunk continuing one
 * of them, a decode token of the other, and the prefill of a third sequence.
 */
class PagedAttentionTest {

    private static final int BLOCK_SIZE = 4;
    private static final int NUM_BLOCKS = 24;
    private static final int LAYERS = 2;
    private static final int LAYER = 1;

    static Stream<Arguments> cases() {
        Stream.Builder<Arguments> cases = Stream.builder();
        for (String path : new String[]{"vector", "scalar"}) {
            // name, heads, kv heads, head dim, window, softcap, alibi, relative bias
            cases.add(Arguments.of(path, "multi-head", 4, 4, 20, 0, 0f, false, false));
            cases.add(Arguments.of(path, "grouped-query", 6, 2, 37, 0, 0f, false, false));
            cases.add(Arguments.of(path, "sliding window", 4, 2, 20, 5, 0f, false, false));
            cases.add(Arguments.of(path, "softcap", 4, 2, 20, 0, 0.5f, false, false));
            cases.add(Arguments.of(path, "alibi", 4, 4, 20, 0, 0f, true, false));
            cases.add(Arguments.of(path, "all at once", 4, 1, 16, 6, 1.5f, true, false));
            cases.add(Arguments.of(path, "relative bias (T5)", 4, 2, 20, 0, 0f, false, true));
        }
        return cases.build();
    }

    /** What one sequence holds: its tokens' q, k and v (row per position) and its block table. */
    private static final class Sequence {
        final List<float[]> queries = new ArrayList<>();
        final List<float[]> keys = new ArrayList<>();
        final List<float[]> values = new ArrayList<>();
        final int[] blockTable;

        Sequence(int[] blockTable) {
            this.blockTable = blockTable;
        }

        int slot(int position) {
            return blockTable[position / BLOCK_SIZE] * BLOCK_SIZE + position % BLOCK_SIZE;
        }
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("cases")
    void matchesDenseAttentionOverEachSequenceHistory(String path, String name, int heads, int kvHeads, int headDim,
                                                      int window, float softcap, boolean alibi, boolean relative) {
        SplittableRandom random = new SplittableRandom(heads * 100L + kvHeads * 10L + headDim + window);
        float[] slopes = null;
        if (alibi) {
            slopes = new float[heads];
            for (int h = 0; h < heads; h++) {
                slopes[h] = (float) Math.pow(2, -8.0 * (h + 1) / heads);
            }
        }
        AttentionParams params = new AttentionParams(heads, kvHeads, headDim, (float) (1 / Math.sqrt(headDim)),
                window, softcap, slopes);
        if (relative) params = params.withRelativeBias(relativeBias(heads, 5, random));
        List<Integer> blocks = new ArrayList<>();
        for (int b = 0; b < NUM_BLOCKS; b++) {
            blocks.add(b);
        }
        Collections.shuffle(blocks, new java.util.Random(7));
        Sequence a = new Sequence(take(blocks, 0, 5));
        Sequence b = new Sequence(take(blocks, 5, 3));
        Sequence c = new Sequence(take(blocks, 8, 2));
        try (CpuBackend backend = KernelPaths.backend(path);
             KvCache cache = backend.allocateKvCache(new KvCacheSpec(LAYERS, NUM_BLOCKS, BLOCK_SIZE, kvHeads, headDim))) {
            // Step 1: prefill 7 tokens of a and 5 of b.
            runStep(backend, cache, params, random, List.of(a, b), new int[]{7, 5});
            // Step 2: a continues with a chunk of 6 (context 13), b decodes one (context 6), c prefills 3.
            runStep(backend, cache, params, random, List.of(a, b, c), new int[]{6, 1, 3});
        }
    }

    @ParameterizedTest
    @MethodSource("dev.jvllm.cpu.KernelPaths#paths")
    void refusesABlockTableShorterThanTheContext(String path) {
        AttentionParams params = AttentionParams.causal(2, 2, 8);
        try (CpuBackend backend = KernelPaths.backend(path);
             KvCache cache = backend.allocateKvCache(new KvCacheSpec(1, 4, BLOCK_SIZE, 2, 8))) {
            ForwardBatch batch = new ForwardBatch(new int[5], new int[]{0, 1, 2, 3, 4}, new int[]{0, 1, 2, 3, 4},
                    new int[]{0, 5}, new int[]{5}, new int[][]{{0}}, BLOCK_SIZE, new int[]{4});
            Tensor q = backend.allocate(5, 16);
            assertThrows(IllegalArgumentException.class,
                    () -> backend.attention(q, backend.allocate(5, 16), backend.allocate(5, 16), cache, 0, batch,
                            params, backend.allocate(5, 16)));
        }
    }

    private static int[] take(List<Integer> blocks, int from, int count) {
        return blocks.subList(from, from + count).stream().mapToInt(Integer::intValue).toArray();
    }

    /** Appends {@code newTokens[s]} random tokens to each sequence in one batch and checks the output. */
    private static void runStep(CpuBackend backend, KvCache cache, AttentionParams params, SplittableRandom random,
                                List<Sequence> sequences, int[] newTokens) {
        int qWidth = params.numHeads() * params.headDim();
        int kvWidth = params.numKvHeads() * params.headDim();
        int total = 0;
        for (int n : newTokens) {
            total += n;
        }
        float[] q = new float[total * qWidth];
        float[] k = new float[total * kvWidth];
        float[] v = new float[total * kvWidth];
        int[] positions = new int[total];
        int[] slots = new int[total];
        int[] queryStarts = new int[sequences.size() + 1];
        int[] contexts = new int[sequences.size()];
        int[][] tables = new int[sequences.size()][];
        int t = 0;
        for (int s = 0; s < sequences.size(); s++) {
            Sequence sequence = sequences.get(s);
            queryStarts[s] = t;
            for (int i = 0; i < newTokens[s]; i++, t++) {
                int position = sequence.keys.size();
                float[] qi = gaussian(random, qWidth);
                float[] ki = gaussian(random, kvWidth);
                float[] vi = gaussian(random, kvWidth);
                sequence.queries.add(qi);
                sequence.keys.add(ki);
                sequence.values.add(vi);
                System.arraycopy(qi, 0, q, t * qWidth, qWidth);
                System.arraycopy(ki, 0, k, t * kvWidth, kvWidth);
                System.arraycopy(vi, 0, v, t * kvWidth, kvWidth);
                positions[t] = position;
                slots[t] = sequence.slot(position);
            }
            contexts[s] = sequence.keys.size();
            tables[s] = sequence.blockTable;
        }
        queryStarts[sequences.size()] = total;
        ForwardBatch batch = new ForwardBatch(new int[total], positions, slots, queryStarts, contexts, tables,
                BLOCK_SIZE, new int[0]);
        Tensor out = backend.allocate(total, qWidth);
        backend.attention(backend.constant(q, total, qWidth), backend.constant(k, total, kvWidth),
                backend.constant(v, total, kvWidth), cache, LAYER, batch, params, out);

        double[] expected = new double[total * qWidth];
        for (int s = 0; s < sequences.size(); s++) {
            Sequence sequence = sequences.get(s);
            for (int token = queryStarts[s]; token < queryStarts[s + 1]; token++) {
                int position = positions[token];
                double[] dense = denseAttention(sequence, position, params);
                System.arraycopy(dense, 0, expected, token * qWidth, qWidth);
            }
        }
        assertClose(expected, backend.toFloatArray(out), "attention at contexts " + java.util.Arrays.toString(contexts));
    }

    /** Softmax attention in double of the query at {@code position} over the sequence's keys. */
    private static double[] denseAttention(Sequence sequence, int position, AttentionParams params) {
        int headDim = params.headDim();
        int group = params.numHeads() / params.numKvHeads();
        double[] out = new double[params.numHeads() * headDim];
        int first = params.slidingWindow() > 0 ? Math.max(0, position - params.slidingWindow() + 1) : 0;
        for (int h = 0; h < params.numHeads(); h++) {
            int kvHead = h / group;
            float[] q = sequence.queries.get(position);
            double[] scores = new double[position - first + 1];
            double max = Double.NEGATIVE_INFINITY;
            for (int j = first; j <= position; j++) {
                double dot = 0;
                for (int d = 0; d < headDim; d++) {
                    dot += (double) q[h * headDim + d] * sequence.keys.get(j)[kvHead * headDim + d];
                }
                double score = dot * params.scale();
                if (params.logitSoftcap() > 0) {
                    score = params.logitSoftcap() * Math.tanh(score / params.logitSoftcap());
                }
                if (params.alibiSlopes() != null) {
                    score += params.alibiSlopes()[h] * (j - position);
                }
                if (params.relativeBias() != null) {
                    int distance = params.relativeBias().maxDistance();
                    score += params.relativeBias().values()[h * (2 * distance + 1) + Math.max(-distance, j - position) + distance];
                }
                scores[j - first] = score;
                max = Math.max(max, score);
            }
            double sum = 0;
            for (int j = 0; j < scores.length; j++) {
                scores[j] = Math.exp(scores[j] - max);
                sum += scores[j];
            }
            for (int j = first; j <= position; j++) {
                double weight = scores[j - first] / sum;
                for (int d = 0; d < headDim; d++) {
                    out[h * headDim + d] += weight * sequence.values.get(j)[kvHead * headDim + d];
                }
            }
        }
        return out;
    }

    /** A random bias per head and relative position up to {@code distance}, as T5's buckets resolve to. */
    static AttentionParams.RelativeBias relativeBias(int heads, int distance, SplittableRandom random) {
        float[] values = new float[heads * (2 * distance + 1)];
        for (int i = 0; i < values.length; i++) values[i] = (float) (random.nextDouble() * 4 - 2);
        return new AttentionParams.RelativeBias(values, distance);
    }
}
