package dev.jvllm.cuda;

import dev.jvllm.engine.ForwardBatch;
import dev.jvllm.spi.KvCacheSpec;
import dev.jvllm.spi.Tensor;

import java.util.function.Function;

/**
 * What the attention kernels need of a {@link ForwardBatch}, checked on the host and uploaded in
 * one copy: per token its position, its sequence and its cache slot, the block tables padded
 * to one row per sequence, and the split the 16-bit attention path uses: prompt chunks cut into
 * tiles of up to {@link #TILE_TOKENS} consecutive tokens (first token, count) for flash_prefill,
 * and the remaining single tokens (decodes) for paged_attention.
 *
 * @param data             holds the arrays end to end (kept so that they stay allocated)
 * @param blockTableStride entries per block-table row
 * @param tileCount        prompt tiles
 * @param singleCount      tokens outside the tiles
 * @param longestSingleContext the most key positions one of the single tokens attends to
 */
record BatchOnDevice(CudaTensor data, int tokens, int blockTableStride, int sequences, int tileCount,
                     int singleCount, int longestSingleContext) {

    /** Query tokens per flash_prefill block (FLASH_QUERIES in attention.cu). */
    static final int TILE_TOKENS = 64;

    /**
     * A sequence's query of at most this many consecutive tokens is read as single tokens (paged_decode,
     * which splits each token's context over many blocks) rather than as a flash_prefill tile (one block a
     * head, looping over the whole context): the 1 + K tokens of a speculative step, the short last chunk
     * of a prompt. The keys are written before attention then, as for any step of several tokens a sequence.
     * 1 turns it off (every query of two tokens or more a tile).
     */
    static final int SINGLES_UP_TO = Integer.getInteger("jvllm.cuda.decodeQueryTokens", 8);

    static BatchOnDevice upload(ForwardBatch batch, KvCacheSpec spec, Function<int[], Tensor> indices) {
        check(batch, spec);
        int tokens = batch.numTokens();
        int sequences = batch.numSequences();
        int stride = 1;
        for (int[] table : batch.blockTables()) stride = Math.max(stride, table.length);
        int[] tiles = new int[2 * tokens];
        int[] singles = new int[tokens];
        int tileCount = 0;
        int singleCount = 0;
        int longestSingleContext = 0;
        for (int s = 0; s < sequences; s++) {
            int start = batch.queryStarts()[s];
            int end = batch.queryStarts()[s + 1];
            if (end - start > Math.max(1, SINGLES_UP_TO) && consecutivePositions(batch.positions(), start, end)) {
                for (int first = start; first < end; first += TILE_TOKENS) {
                    tiles[2 * tileCount] = first;
                    tiles[2 * tileCount + 1] = Math.min(TILE_TOKENS, end - first);
                    tileCount++;
                }
            } else {
                for (int t = start; t < end; t++) {
                    singles[singleCount++] = t;
                    longestSingleContext = Math.max(longestSingleContext, batch.positions()[t] + 1);
                }
            }
        }
        int[] packed = new int[3 * tokens + sequences * stride + 2 * tileCount + singleCount];
        System.arraycopy(batch.positions(), 0, packed, 0, tokens);
        for (int s = 0; s < sequences; s++) {
            for (int t = batch.queryStarts()[s]; t < batch.queryStarts()[s + 1]; t++) packed[tokens + t] = s;
            int[] table = batch.blockTables()[s];
            System.arraycopy(table, 0, packed, 3 * tokens + s * stride, table.length);
        }
        System.arraycopy(batch.slotMapping(), 0, packed, 2 * tokens, tokens);
        int tilesAt = 3 * tokens + sequences * stride;
        System.arraycopy(tiles, 0, packed, tilesAt, 2 * tileCount);
        System.arraycopy(singles, 0, packed, tilesAt + 2 * tileCount, singleCount);
        return new BatchOnDevice((CudaTensor) indices.apply(packed), tokens, stride, sequences, tileCount, singleCount,
                longestSingleContext);
    }

    /**
     * Cross-attention's rows as paged_decode reads a batch (its single tokens, no tiles, no cache
     * slots): token t of sequence s as a query at the last of the range's {@code ranges[2s + 1]}
     * positions, over a block table of the range's blocks of {@code blockSize} rows from row
     * {@code ranges[2s]} (a multiple of blockSize). Every table has the entries of {@code longestRange}
     * rows, so that the steps of one batch shape upload alike. The caller has checked the ranges
     * (KernelShapes.checkCrossAttention: 1 to longestRange rows within the keys) and their alignment.
     */
    static BatchOnDevice crossRows(ForwardBatch batch, int[] ranges, int longestRange, int blockSize,
                                   Function<int[], Tensor> indices) {
        int tokens = batch.numTokens();
        int sequences = batch.numSequences();
        int stride = Math.max(1, (longestRange + blockSize - 1) / blockSize);
        int[] packed = new int[3 * tokens + sequences * stride + tokens];
        int longest = 0;
        for (int s = 0; s < sequences; s++) {
            int first = ranges[2 * s], rows = ranges[2 * s + 1];
            longest = Math.max(longest, rows);
            for (int t = batch.queryStarts()[s]; t < batch.queryStarts()[s + 1]; t++) {
                packed[t] = rows - 1;
                packed[tokens + t] = s;
                packed[2 * tokens + t] = -1;
                packed[3 * tokens + sequences * stride + t] = t;
            }
            for (int b = 0; b < (rows + blockSize - 1) / blockSize; b++) packed[3 * tokens + s * stride + b] = first / blockSize + b;
        }
        return new BatchOnDevice((CudaTensor) indices.apply(packed), tokens, stride, sequences, 0, tokens, longest);
    }

    private static boolean consecutivePositions(int[] positions, int start, int end) {
        for (int t = start + 1; t < end; t++) {
            if (positions[t] != positions[t - 1] + 1) return false;
        }
        return true;
    }

    long positions() {
        return data.address();
    }

    long tokenSequences() {
        return data.address() + (long) tokens * Integer.BYTES;
    }

    long slots() {
        return data.address() + 2L * tokens * Integer.BYTES;
    }

    long blockTables() {
        return data.address() + 3L * tokens * Integer.BYTES;
    }

    long tiles() {
        return blockTables() + (long) sequences * blockTableStride * Integer.BYTES;
    }

    long singles() {
        return tiles() + 2L * tileCount * Integer.BYTES;
    }

    /** The checks the CPU kernel makes: the kernels trust every index they are given. */
    private static void check(ForwardBatch batch, KvCacheSpec spec) {
        long slots = (long) spec.numBlocks() * spec.blockSize();
        int[] slotMapping = batch.slotMapping();
        for (int t = 0; t < slotMapping.length; t++) {
            if (slotMapping[t] >= slots) {
                throw new IllegalArgumentException("token " + t + " maps to slot " + slotMapping[t]
                        + " but the cache has " + slots + " slots");
            }
        }
        int blockSize = spec.blockSize();
        for (int s = 0; s < batch.numSequences(); s++) {
            int context = batch.contextLengths()[s];
            int[] table = batch.blockTables()[s];
            int needed = (context + blockSize - 1) / blockSize;
            if (table.length < needed) {
                throw new IllegalArgumentException("sequence " + s + " has " + context + " tokens of context but "
                        + table.length + " blocks of " + blockSize + " in its table");
            }
            for (int b = 0; b < needed; b++) {
                if (table[b] < 0 || table[b] >= spec.numBlocks()) {
                    throw new IllegalArgumentException("sequence " + s + " names block " + table[b]
                            + " but the cache has " + spec.numBlocks() + " blocks");
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
}
