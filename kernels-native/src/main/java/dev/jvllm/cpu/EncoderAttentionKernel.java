package dev.jvllm.cpu;

import dev.jvllm.engine.ForwardBatch;
import dev.jvllm.spi.AttentionParams;

import java.util.Arrays;

/**
 * Bidirectional attention for encoders (BERT, XLM-RoBERTa): every token of a sequence attends
 * over every token of the same sequence, reading the step's own keys and values (no cache).
 * Each (sequence, query head) pair is a unit of parallel work. Scores are {@code scale · q·k},
 * optionally soft-capped; the softmax subtracts the row maximum before exponentiating, in float32.
 */
final class EncoderAttentionKernel {

    private final InnerLoops loops;
    private final WorkerPool pool;

    EncoderAttentionKernel(InnerLoops loops, WorkerPool pool) {
        this.loops = loops;
        this.pool = pool;
    }

    void run(CpuTensor q, CpuTensor k, CpuTensor v, ForwardBatch batch, AttentionParams params, CpuTensor out) {
        int heads = params.numHeads();
        pool.forEach(batch.numSequences() * heads, 1, (first, end, worker) -> {
            WorkerScratch scratch = pool.scratch(worker);
            for (int unit = first; unit < end; unit++) {
                attendHead(unit / heads, unit % heads, q, k, v, batch, params, out, scratch);
            }
        });
    }

    private void attendHead(int sequence, int head, CpuTensor q, CpuTensor k, CpuTensor v, ForwardBatch batch,
                            AttentionParams params, CpuTensor out, WorkerScratch scratch) {
        int headDim = params.headDim();
        int kvHead = head / (params.numHeads() / params.numKvHeads());
        int first = batch.queryStarts()[sequence];
        int count = batch.queryStarts()[sequence + 1] - first;
        float cap = params.logitSoftcap();
        int kvOffset = kvHead * headDim;
        for (int t = first; t < first + count; t++) {
            int queryIndex = q.arrayIndex(t) + head * headDim;
            float[] scores = scratch.scores(count);
            for (int j = 0; j < count; j++) {
                float score = params.scale() * loops.dot(q.floats(), queryIndex, k.floats(), k.arrayIndex(first + j) + kvOffset, headDim);
                scores[j] = cap > 0f ? cap * (float) Math.tanh(score / cap) : score;
            }
            float max = loops.max(scores, count);
            float sum = loops.expShiftedAndSum(scores, count, max);
            float[] weighted = scratch.accumulator(headDim);
            Arrays.fill(weighted, 0, headDim, 0f);
            for (int j = 0; j < count; j++) {
                loops.addScaled(scores[j], v.floats(), v.arrayIndex(first + j) + kvOffset, weighted, headDim);
            }
            loops.storeScaled(weighted, 1f / sum, out.floats(), out.arrayIndex(t) + head * headDim, headDim);
        }
    }
}
