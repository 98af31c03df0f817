package dev.jvllm.cpu;

import dev.jvllm.engine.ForwardBatch;
import dev.jvllm.spi.AttentionParams;

import java.util.Arrays;

/**
 * Bidirectional attention for encoders (BERT, XLM-RoBERTa): every token of a sequence attends
 * over every token of the same sequence, reading the step's own keys and values (no cache); and
 * cross-attention (BART), where a sequence's queries attend over the rows of its encoder's keys and values.
 * Each (sequence, query head) pair is a unit of parallel work. Scores are {@code scale · q·k},
 * optionally soft-capped; the softmax subtracts the row maximum before exponentiating, in float32.
 *
 * <p>Per unit the head's keys (scaled) and values are packed into panels once, and both products
 * run on the {@link PanelLoops} microkernel for {@value PanelLoops#ROWS} queries at a time:
 * {@code S = Q·Kᵀ} against key panels (keys as columns, head dimensions as depth), then the
 * softmax of each row of S, then {@code S·V} against value panels (head dimensions as columns,
 * keys as depth). Encoder heads are narrow (bge-small: 32), so a dot product per query and key
 * would spend most of its time on horizontal sums.
 */
final class EncoderAttentionKernel {

    private final InnerLoops loops;
    private final WorkerPool pool;

    EncoderAttentionKernel(InnerLoops loops, WorkerPool pool) {
        this.loops = loops;
        this.pool = pool;
    }

    void run(CpuTensor q, CpuTensor k, CpuTensor v, ForwardBatch batch, AttentionParams params, CpuTensor out) {
        int[] starts = batch.queryStarts();
        int[] ranges = new int[2 * batch.numSequences()];
        for (int s = 0; s < batch.numSequences(); s++) {
            ranges[2 * s] = starts[s];
            ranges[2 * s + 1] = starts[s + 1] - starts[s];
        }
        runCross(q, k, v, batch, ranges, params, out);
    }

    /**
     * Cross-attention: sequence s's queries (by {@code batch.queryStarts()}) over rows
     * {@code [ranges[2s], ranges[2s] + ranges[2s + 1])} of k and v; encoder attention is the case
     * where those are the sequence's own tokens.
     */
    void runCross(CpuTensor q, CpuTensor k, CpuTensor v, ForwardBatch batch, int[] ranges, AttentionParams params,
                  CpuTensor out) {
        int heads = params.numHeads();
        int[] starts = batch.queryStarts();
        pool.forEachBlock(batch.numSequences() * heads, (first, end, worker) -> {
            WorkerScratch scratch = pool.scratch(worker);
            for (int unit = first; unit < end; unit++) {
                int s = unit / heads;
                if (starts[s + 1] == starts[s]) continue;
                attendHead(starts[s], starts[s + 1] - starts[s], ranges[2 * s], ranges[2 * s + 1], unit % heads, q, k, v,
                        params, out, scratch);
            }
        });
    }

    private void attendHead(int queryFirst, int queryCount, int first, int count, int head, CpuTensor q, CpuTensor k,
                            CpuTensor v, AttentionParams params, CpuTensor out, WorkerScratch scratch) {
        PanelLoops tile = loops.panels();
        int width = tile.width();
        int headDim = params.headDim();
        int kvOffset = head / (params.numHeads() / params.numKvHeads()) * headDim;
        int keyPanels = (count + width - 1) / width;
        int valuePanels = (headDim + width - 1) / width;
        int scoreStride = keyPanels * width;
        int contextStride = valuePanels * width;
        float[] keys = scratch.keyPanels(keyPanels * width * headDim);
        float[] values = scratch.valuePanels(valuePanels * width * count);
        float[] scores = scratch.scores(PanelLoops.ROWS * scoreStride);
        float[] context = scratch.tile(PanelLoops.ROWS * contextStride);
        packKeys(k, first, count, kvOffset, headDim, params.scale(), width, keys);
        packValues(v, first, count, kvOffset, headDim, width, values);
        float cap = params.logitSoftcap();
        AttentionParams.RelativeBias bias = params.relativeBias();
        for (int t = queryFirst; t < queryFirst + queryCount; t += PanelLoops.ROWS) {
            int rows = Math.min(PanelLoops.ROWS, queryFirst + queryCount - t);
            int queryAt = q.arrayIndex(t) + head * headDim;
            for (int p = 0; p < keyPanels; p++) {
                tile.multiply(keys, p * width * headDim, headDim, q.floats(), queryAt, q.cols(), rows,
                        null, 0, scores, p * width, scoreStride);
            }
            float[] inverseSums = scratch.accumulator(rows);
            for (int r = 0; r < rows; r++) {
                int row = r * scoreStride;
                if (cap > 0f) {
                    for (int j = row; j < row + count; j++) {
                        scores[j] = cap * (float) Math.tanh(scores[j] / cap);
                    }
                }
                if (bias != null) {
                    // Positions within the sequence: the query's is its index there, each key's its own.
                    int query = t + r - queryFirst;
                    for (int j = 0; j < count; j++) scores[row + j] += bias.of(head, j - query);
                }
                float max = loops.max(scores, row, count);
                inverseSums[r] = 1f / loops.expShiftedAndSum(scores, row, count, max);
            }
            for (int p = 0; p < valuePanels; p++) {
                tile.multiply(values, p * width * count, count, scores, 0, scoreStride, rows,
                        null, 0, context, p * width, contextStride);
            }
            for (int r = 0; r < rows; r++) {
                loops.storeScaled(context, r * contextStride, inverseSums[r], out.floats(),
                        out.arrayIndex(t + r) + head * headDim, headDim);
            }
        }
    }

    /** {@code scale · K} of one head as panels of {@code width} keys, depth-major, zero past the last key. */
    private static void packKeys(CpuTensor k, int first, int count, int kvOffset, int headDim, float scale, int width,
                                 float[] panels) {
        int padded = (count + width - 1) / width * width;
        for (int j = 0; j < padded; j++) {
            int at = j / width * width * headDim + j % width;
            int key = k.arrayIndex(first + Math.min(j, count - 1)) + kvOffset;
            float factor = j < count ? scale : 0f;
            for (int d = 0; d < headDim; d++) {
                panels[at + d * width] = factor * k.floats()[key + d];
            }
        }
    }

    /** V of one head as panels of {@code width} head dimensions, key-major, zero past the last dimension. */
    private static void packValues(CpuTensor v, int first, int count, int kvOffset, int headDim, int width,
                                   float[] panels) {
        for (int p = 0; p * width < headDim; p++) {
            int columns = Math.min(width, headDim - p * width);
            for (int j = 0; j < count; j++) {
                int at = (p * count + j) * width;
                System.arraycopy(v.floats(), v.arrayIndex(first + j) + kvOffset + p * width, panels, at, columns);
                Arrays.fill(panels, at + columns, at + width, 0f);
            }
        }
    }
}
