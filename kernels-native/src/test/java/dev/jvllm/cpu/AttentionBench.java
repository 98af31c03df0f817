package dev.jvllm.cpu;

import dev.jvllm.engine.ForwardBatch;
import dev.jvllm.spi.AttentionParams;
import dev.jvllm.spi.KvCacheSpec;
import dev.jvllm.spi.Tensor;

import java.lang.foreign.MemorySegment;
import java.util.Arrays;
import java.util.SplittableRandom;

/**
 * Microbenchmark (not a test) of decode attention: one query token per sequence over a paged
 * float32 cache of the Llama-3.2-1B shape (32 query heads, 8 KV heads, head dim 64, 16 layers,
 * blocks of 16 in shuffled order), timed per engine step (all 16 layers) at several contexts.
 *
 * <pre>
 * java --add-modules jdk.incubator.vector -cp kernels-native/target/test-classes:kernels-native/target/classes:\
 *     engine-core/target/classes:$(cat /tmp/cp.txt) dev.jvllm.cpu.AttentionBench [threads] [batch] [contexts]
 * </pre>
 */
public final class AttentionBench {

    private static final int HEADS = 32;
    private static final int KV_HEADS = 8;
    private static final int DIM = 64;
    private static final int LAYERS = 16;
    private static final int BLOCK = 16;

    private AttentionBench() {
    }

    public static void main(String[] args) {
        int threads = args.length > 0 ? Integer.parseInt(args[0]) : 2;
        int batchSize = args.length > 1 ? Integer.parseInt(args[1]) : 1;
        int[] contexts = Arrays.stream((args.length > 2 ? args[2] : "128,512,2048").split(","))
                .mapToInt(Integer::parseInt).toArray();
        AttentionParams params = AttentionParams.causal(HEADS, KV_HEADS, DIM);
        SplittableRandom random = new SplittableRandom(1);
        StringBuilder line = new StringBuilder("threads=" + threads + " batch=" + batchSize);
        try (CpuBackend backend = new CpuBackend(threads, InnerLoops.select())) {
            Case[] cases = new Case[contexts.length];
            for (int c = 0; c < contexts.length; c++) {
                cases[c] = new Case(backend, contexts[c], batchSize, random);
            }
            // Warm every context first, then measure them round-robin, so drift hits all alike.
            for (Case c : cases) {
                c.run(params, 2 * c.steps);
            }
            double[][] samples = new double[cases.length][9];
            for (int r = 0; r < 9; r++) {
                for (int c = 0; c < cases.length; c++) {
                    long t0 = System.nanoTime();
                    cases[c].run(params, cases[c].steps);
                    samples[c][r] = (System.nanoTime() - t0) / 1e6 / cases[c].steps;
                }
            }
            for (int c = 0; c < cases.length; c++) {
                Arrays.sort(samples[c]);
                line.append(String.format("  ctx=%d: %.3f ms/step", contexts[c], samples[c][4]));
                cases[c].cache.close();
            }
        }
        System.out.println(line);
    }

    /** One context length's cache, batch and tensors. */
    private static final class Case {
        final CpuBackend backend;
        final CpuKvCache cache;
        final ForwardBatch batch;
        final Tensor q;
        final Tensor k;
        final Tensor v;
        final Tensor out;
        final int steps;

        Case(CpuBackend backend, int context, int batchSize, SplittableRandom random) {
            this.backend = backend;
            int blocksPerSeq = (context + BLOCK - 1) / BLOCK;
            int numBlocks = blocksPerSeq * batchSize;
            cache = (CpuKvCache) backend.allocateKvCache(new KvCacheSpec(LAYERS, numBlocks, BLOCK, KV_HEADS, DIM));
            for (int l = 0; l < LAYERS; l++) {
                fill(cache.keys(l), random);
                fill(cache.values(l), random);
            }
            int[] order = new int[numBlocks];
            for (int i = 0; i < numBlocks; i++) {
                order[i] = i;
            }
            for (int i = numBlocks - 1; i > 0; i--) {
                int j = random.nextInt(i + 1);
                int t = order[i];
                order[i] = order[j];
                order[j] = t;
            }
            int[][] tables = new int[batchSize][];
            int[] positions = new int[batchSize];
            int[] slots = new int[batchSize];
            int[] starts = new int[batchSize + 1];
            int[] ctx = new int[batchSize];
            for (int s = 0; s < batchSize; s++) {
                tables[s] = Arrays.copyOfRange(order, s * blocksPerSeq, (s + 1) * blocksPerSeq);
                positions[s] = context - 1;
                slots[s] = tables[s][(context - 1) / BLOCK] * BLOCK + (context - 1) % BLOCK;
                starts[s + 1] = s + 1;
                ctx[s] = context;
            }
            batch = new ForwardBatch(new int[batchSize], positions, slots, starts, ctx, tables, BLOCK, new int[0]);
            q = backend.constant(KernelPaths.gaussian(random, batchSize * HEADS * DIM), batchSize, HEADS * DIM);
            k = backend.constant(KernelPaths.gaussian(random, batchSize * KV_HEADS * DIM), batchSize, KV_HEADS * DIM);
            v = backend.constant(KernelPaths.gaussian(random, batchSize * KV_HEADS * DIM), batchSize, KV_HEADS * DIM);
            out = backend.allocate(batchSize, HEADS * DIM);
            steps = Math.max(10, 60_000 / context / batchSize);
        }

        void run(AttentionParams params, int n) {
            for (int i = 0; i < n; i++) {
                step(backend, q, k, v, cache, batch, params, out);
            }
        }
    }

    private static void step(CpuBackend backend, Tensor q, Tensor k, Tensor v, CpuKvCache cache, ForwardBatch batch,
                             AttentionParams params, Tensor out) {
        for (int l = 0; l < LAYERS; l++) {
            backend.attention(q, k, v, cache, l, batch, params, out);
        }
    }

    private static void fill(MemorySegment segment, SplittableRandom random) {
        for (long i = 0; i < segment.byteSize() / Float.BYTES; i++) {
            segment.setAtIndex(Elements.FLOAT, i, (float) random.nextGaussian());
        }
    }
}
