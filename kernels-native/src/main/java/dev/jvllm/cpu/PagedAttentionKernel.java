package dev.jvllm.cpu;

import dev.jvllm.engine.ForwardBatch;
import dev.jvllm.spi.AttentionParams;

import java.lang.foreign.MemorySegment;
import java.util.Arrays;

/**
 * Causal attention over a paged KV cache for a flattened batch of sequences (prefill chunks and
 * decode tokens mixed). First the step's keys and values are written to their slots, so the
 * tokens of a chunk see each other; then each (sequence, query head) pair is a unit of parallel
 * work: every query token at position p attends over key positions {@code 0..p} of its sequence
 * (or the last {@code slidingWindow} of them), read through the sequence's block table.
 *
 * <p>Scores are {@code scale · q·k}, then optionally soft-capped ({@code cap · tanh(s / cap)},
 * Gemma 2) and ALiBi-biased ({@code + slope[h] · (keyPos − p)}, Press et al. 2022); the softmax
 * subtracts the maximum before exponentiating, all in float32.
 */
final class PagedAttentionKernel {

    private final InnerLoops loops;
    private final WorkerPool pool;

    PagedAttentionKernel(InnerLoops loops, WorkerPool pool) {
        this.loops = loops;
        this.pool = pool;
    }

    void run(CpuTensor q, CpuTensor k, CpuTensor v, CpuKvCache cache, int layer, ForwardBatch batch,
             AttentionParams params, CpuTensor out) {
        writeStep(k, v, cache, layer, batch);
        checkBlockTables(cache, batch);
        int heads = params.numHeads();
        int sequences = batch.numSequences();
        MemorySegment keys = cache.keys(layer);
        MemorySegment values = cache.values(layer);
        pool.forEach(sequences * heads, 1, (first, end, worker) -> {
            WorkerScratch scratch = pool.scratch(worker);
            for (int unit = first; unit < end; unit++) {
                attendHead(unit / heads, unit % heads, q, keys, values, cache, batch, params, out, scratch);
            }
        });
    }

    /** Copies each token's key and value row into its slot; a negative slot means "do not cache". */
    private static void writeStep(CpuTensor k, CpuTensor v, CpuKvCache cache, int layer, ForwardBatch batch) {
        int width = cache.slotWidth();
        long slotBytes = (long) width * Float.BYTES;
        int[] slotMapping = batch.slotMapping();
        for (int t = 0; t < slotMapping.length; t++) {
            int slot = slotMapping[t];
            if (slot < 0) {
                continue;
            }
            if (slot >= cache.slots()) {
                throw new IllegalArgumentException("token " + t + " maps to slot " + slot + " but the cache has "
                        + cache.slots() + " slots");
            }
            MemorySegment.copy(k.floats(), k.arrayIndex(t), cache.keys(layer), Elements.FLOAT, slot * slotBytes, width);
            MemorySegment.copy(v.floats(), v.arrayIndex(t), cache.values(layer), Elements.FLOAT, slot * slotBytes, width);
        }
    }

    private static void checkBlockTables(CpuKvCache cache, ForwardBatch batch) {
        int blockSize = cache.spec().blockSize();
        int numBlocks = cache.spec().numBlocks();
        for (int s = 0; s < batch.numSequences(); s++) {
            int context = batch.contextLengths()[s];
            int[] table = batch.blockTables()[s];
            int needed = (context + blockSize - 1) / blockSize;
            if (table.length < needed) {
                throw new IllegalArgumentException("sequence " + s + " has " + context + " tokens of context but "
                        + table.length + " blocks of " + blockSize + " in its table");
            }
            for (int b = 0; b < needed; b++) {
                if (table[b] < 0 || table[b] >= numBlocks) {
                    throw new IllegalArgumentException("sequence " + s + " names block " + table[b]
                            + " but the cache has " + numBlocks + " blocks");
                }
            }
            for (int t = batch.queryStarts()[s]; t < batch.queryStarts()[s + 1]; t++) {
                int position = batch.positions()[t];
                if (position < 0 || position >= context) {
                    throw new IllegalArgumentException("token " + t + " of sequence " + s + " is at position "
                            + position + ", outside its context of " + context);
                }
            }
        }
    }

    private void attendHead(int sequence, int head, CpuTensor q, MemorySegment keys, MemorySegment values,
                            CpuKvCache cache, ForwardBatch batch, AttentionParams params, CpuTensor out,
                            WorkerScratch scratch) {
        int headDim = params.headDim();
        int kvHead = head / (params.numHeads() / params.numKvHeads());
        int slotWidth = cache.slotWidth();
        int blockSize = batch.blockSize();
        int[] blockTable = batch.blockTables()[sequence];
        int window = params.slidingWindow();
        float cap = params.logitSoftcap();
        float slope = params.alibiSlopes() == null ? 0f : params.alibiSlopes()[head];
        for (int t = batch.queryStarts()[sequence]; t < batch.queryStarts()[sequence + 1]; t++) {
            int position = batch.positions()[t];
            int firstKey = window > 0 ? Math.max(0, position - window + 1) : 0;
            int count = position - firstKey + 1;
            int queryIndex = q.arrayIndex(t) + head * headDim;
            float[] scores = scratch.scores(count);
            for (int j = 0; j < count; j++) {
                int keyPosition = firstKey + j;
                long keyIndex = slotOf(blockTable, blockSize, keyPosition) * slotWidth + (long) kvHead * headDim;
                float score = params.scale() * loops.dot(keys, keyIndex, q.floats(), queryIndex, headDim);
                if (cap > 0f) {
                    score = cap * (float) Math.tanh(score / cap);
                }
                scores[j] = score + slope * (keyPosition - position);
            }
            float max = loops.max(scores, count);
            float sum = loops.expShiftedAndSum(scores, count, max);
            float[] weighted = scratch.accumulator(headDim);
            Arrays.fill(weighted, 0, headDim, 0f);
            for (int j = 0; j < count; j++) {
                long valueIndex = slotOf(blockTable, blockSize, firstKey + j) * slotWidth + (long) kvHead * headDim;
                loops.addScaled(scores[j], values, valueIndex, weighted, headDim);
            }
            loops.storeScaled(weighted, 1f / sum, out.floats(), out.arrayIndex(t) + head * headDim, headDim);
        }
    }

    private static long slotOf(int[] blockTable, int blockSize, int position) {
        return (long) blockTable[position / blockSize] * blockSize + position % blockSize;
    }
}
