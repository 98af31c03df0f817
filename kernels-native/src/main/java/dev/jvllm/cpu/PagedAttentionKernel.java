package dev.jvllm.cpu;

import dev.jvllm.engine.ForwardBatch;
import dev.jvllm.spi.AttentionParams;

import java.lang.foreign.MemorySegment;
import java.util.Arrays;
import java.util.function.IntFunction;

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
 *
 * <p>A latent cache (multi-head latent attention) is read the same way with one shared slot row per
 * token: the first {@code r} features are both the latent key and the value, the rest the rotary key.
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
        attendGroups(q, cache.keys(layer), cache.values(layer), cache.slotWidth(), batch, params, out);
    }

    /**
     * Multi-head latent attention over a latent cache: writes each token's {@code [latent ; keyRope]}
     * row, then every head scores its latent query against the latent part of each cached row and
     * its rotary query against the rotary part, and averages the latent parts (the values).
     */
    void runLatent(CpuTensor qLatent, CpuTensor qRope, CpuTensor latent, CpuTensor keyRope, CpuKvCache cache,
                   int layer, ForwardBatch batch, AttentionParams params, CpuTensor out) {
        writeLatentStep(latent, keyRope, cache, layer, batch);
        checkBlockTables(cache, batch);
        int rank = latent.cols();
        int ropeDim = keyRope.cols();
        MemorySegment rows = cache.keys(layer);
        attendAll(batch, params, out, head -> new HeadReads(qLatent, head * rank, qRope, head * ropeDim, ropeDim,
                rows, 0, rows, 0, rank, cache.slotWidth()));
    }

    /**
     * Each (sequence, group of query heads sharing a KV head) is a unit of parallel work, so every
     * key and value row is read once for the group while it is in L1; groups are split in halves
     * while there are fewer units than workers.
     */
    private void attendGroups(CpuTensor q, MemorySegment keys, MemorySegment values, int slotWidth,
                              ForwardBatch batch, AttentionParams params, CpuTensor out) {
        int heads = params.numHeads();
        int headsPerUnit = heads / params.numKvHeads();
        while (headsPerUnit % 2 == 0 && batch.numSequences() * (heads / headsPerUnit) < pool.size()) {
            headsPerUnit /= 2;
        }
        int group = headsPerUnit;
        int unitsPerSequence = heads / group;
        pool.forEach(batch.numSequences() * unitsPerSequence, 1, (first, end, worker) -> {
            WorkerScratch scratch = pool.scratch(worker);
            for (int unit = first; unit < end; unit++) {
                attendGroup(unit / unitsPerSequence, (unit % unitsPerSequence) * group, group, q, keys, values,
                        slotWidth, batch, params, out, scratch);
            }
        });
    }

    /**
     * Query heads {@code firstHead..firstHead + group} of one sequence, all reading the same KV
     * head: the start of each key row the sequence's tokens read is found once, then per token all
     * the group's scores come from one pass over the keys and all its outputs from one pass over the
     * values.
     */
    private void attendGroup(int sequence, int firstHead, int group, CpuTensor q, MemorySegment keys,
                             MemorySegment values, int slotWidth, ForwardBatch batch, AttentionParams params,
                             CpuTensor out, WorkerScratch scratch) {
        int dim = params.headDim();
        long kvOffset = (long) (firstHead / (params.numHeads() / params.numKvHeads())) * dim;
        int blockSize = batch.blockSize();
        int[] blockTable = batch.blockTables()[sequence];
        int window = params.slidingWindow();
        float scale = params.scale();
        float cap = params.logitSoftcap();
        float[] slopes = params.alibiSlopes();
        AttentionParams.RelativeBias bias = params.relativeBias();
        int from = batch.queryStarts()[sequence];
        int to = batch.queryStarts()[sequence + 1];
        int lowest = Integer.MAX_VALUE;
        int highest = -1;
        for (int t = from; t < to; t++) {
            int position = batch.positions()[t];
            lowest = Math.min(lowest, window > 0 ? Math.max(0, position - window + 1) : 0);
            highest = Math.max(highest, position);
        }
        if (highest < 0) {
            return;
        }
        long[] rows = scratch.rows(highest - lowest + 1);
        for (int position = lowest; position <= highest; ) {
            int inBlock = position % blockSize;
            long slot = (long) blockTable[position / blockSize] * blockSize + inBlock;
            int end = Math.min(highest + 1, position - inBlock + blockSize);
            for (; position < end; position++, slot++) {
                rows[position - lowest] = slot * slotWidth;
            }
        }
        float[] inverseSums = scratch.headScales(group);
        for (int t = from; t < to; t++) {
            int position = batch.positions()[t];
            int firstKey = window > 0 ? Math.max(0, position - window + 1) : 0;
            int count = position - firstKey + 1;
            int rowIndex = firstKey - lowest;
            float[] scores = scratch.scores(group * count);
            loops.rowDots(keys, rows, rowIndex, kvOffset, count, q.floats(), q.arrayIndex(t) + firstHead * dim, dim,
                    group, dim, scores, 0, count);
            for (int g = 0; g < group; g++) {
                int base = g * count;
                float slope = slopes == null ? 0f : slopes[firstHead + g];
                if (cap > 0f || slope != 0f || bias != null) {
                    for (int j = 0; j < count; j++) {
                        float score = scale * scores[base + j];
                        if (cap > 0f) {
                            score = cap * (float) Math.tanh(score / cap);
                        }
                        score += slope * (firstKey + j - position);
                        if (bias != null) score += bias.of(firstHead + g, firstKey + j - position);
                        scores[base + j] = score;
                    }
                } else {
                    for (int j = 0; j < count; j++) {
                        scores[base + j] = scale * scores[base + j];
                    }
                }
                float max = loops.max(scores, base, count);
                inverseSums[g] = 1f / loops.expShiftedAndSum(scores, base, count, max);
            }
            loops.weightedRows(scores, 0, count, group, values, rows, rowIndex, kvOffset, count, dim, inverseSums,
                    out.floats(), out.arrayIndex(t) + firstHead * dim, dim);
        }
    }

    /** Each (sequence, query head) pair is a unit of parallel work (latent attention). */
    private void attendAll(ForwardBatch batch, AttentionParams params, CpuTensor out,
                           IntFunction<HeadReads> readsOfHead) {
        int heads = params.numHeads();
        pool.forEach(batch.numSequences() * heads, 1, (first, end, worker) -> {
            WorkerScratch scratch = pool.scratch(worker);
            for (int unit = first; unit < end; unit++) {
                int head = unit % heads;
                attendHead(unit / heads, head, readsOfHead.apply(head), batch, params, out, scratch);
            }
        });
    }

    /**
     * Where one query head reads: its query (and an optional second query part scored against the
     * features of the slot after the first {@code dim}), and where in each cached slot its key and
     * value start. {@code dim} is the width of the first query part, of the key part it meets and of
     * the value (and so of the head's output).
     */
    private record HeadReads(CpuTensor query, int queryOffset, CpuTensor ropeQuery, int ropeQueryOffset, int ropeDim,
                             MemorySegment keys, long keyOffset, MemorySegment values, long valueOffset, int dim,
                             int slotWidth) {
    }

    /** Copies each token's key and value rows into their slots; a negative slot means "do not cache". */
    private static void writeStep(CpuTensor k, CpuTensor v, CpuKvCache cache, int layer, ForwardBatch batch) {
        writeSlots(cache, cache.keys(layer), batch, k);
        writeSlots(cache, cache.values(layer), batch, v);
    }

    /** Copies each token's latent row and rotary key, side by side, into its slot. */
    private static void writeLatentStep(CpuTensor latent, CpuTensor keyRope, CpuKvCache cache, int layer,
                                        ForwardBatch batch) {
        writeSlots(cache, cache.keys(layer), batch, latent, keyRope);
    }

    /** Writes token t's rows of {@code parts}, one after another, into its slot of {@code pool}. */
    private static void writeSlots(CpuKvCache cache, MemorySegment pool, ForwardBatch batch, CpuTensor... parts) {
        long slotBytes = (long) cache.slotWidth() * Float.BYTES;
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
            long at = slot * slotBytes;
            for (CpuTensor part : parts) {
                MemorySegment.copy(part.floats(), part.arrayIndex(t), pool, Elements.FLOAT, at, part.cols());
                at += (long) part.cols() * Float.BYTES;
            }
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

    private void attendHead(int sequence, int head, HeadReads reads, ForwardBatch batch, AttentionParams params,
                            CpuTensor out, WorkerScratch scratch) {
        int dim = reads.dim();
        int blockSize = batch.blockSize();
        int[] blockTable = batch.blockTables()[sequence];
        int window = params.slidingWindow();
        float cap = params.logitSoftcap();
        float slope = params.alibiSlopes() == null ? 0f : params.alibiSlopes()[head];
        CpuTensor q = reads.query();
        CpuTensor ropeQuery = reads.ropeQuery();
        for (int t = batch.queryStarts()[sequence]; t < batch.queryStarts()[sequence + 1]; t++) {
            int position = batch.positions()[t];
            int firstKey = window > 0 ? Math.max(0, position - window + 1) : 0;
            int count = position - firstKey + 1;
            int queryIndex = q.arrayIndex(t) + reads.queryOffset();
            float[] scores = scratch.scores(count);
            for (int j = 0; j < count; j++) {
                int keyPosition = firstKey + j;
                long slotStart = slotOf(blockTable, blockSize, keyPosition) * reads.slotWidth();
                float dot = loops.dot(reads.keys(), slotStart + reads.keyOffset(), q.floats(), queryIndex, dim);
                if (ropeQuery != null) {
                    dot += loops.dot(reads.keys(), slotStart + reads.keyOffset() + dim, ropeQuery.floats(),
                            ropeQuery.arrayIndex(t) + reads.ropeQueryOffset(), reads.ropeDim());
                }
                float score = params.scale() * dot;
                if (cap > 0f) {
                    score = cap * (float) Math.tanh(score / cap);
                }
                scores[j] = score + slope * (keyPosition - position);
            }
            float max = loops.max(scores, 0, count);
            float sum = loops.expShiftedAndSum(scores, 0, count, max);
            float[] weighted = scratch.accumulator(dim);
            Arrays.fill(weighted, 0, dim, 0f);
            for (int j = 0; j < count; j++) {
                long valueIndex = slotOf(blockTable, blockSize, firstKey + j) * reads.slotWidth() + reads.valueOffset();
                loops.addScaled(scores[j], reads.values(), valueIndex, weighted, dim);
            }
            loops.storeScaled(weighted, 0, 1f / sum, out.floats(), out.arrayIndex(t) + head * dim, dim);
        }
    }

    private static long slotOf(int[] blockTable, int blockSize, int position) {
        return (long) blockTable[position / blockSize] * blockSize + position % blockSize;
    }
}
