package dev.jvllm.cpu;

/**
 * Buffers one worker reuses across kernel calls; each grows to the largest size asked for and is
 * then kept, so steady-state kernels allocate nothing. Contents are undefined on return.
 */
final class WorkerScratch {

    private float[] weights = new float[0];
    private float[] scores = new float[0];
    private float[] accumulator = new float[0];
    private long[] rows = new long[0];
    private float[] headScales = new float[0];
    private float[] keyPanels = new float[0];
    private float[] valuePanels = new float[0];
    private float[] tile = new float[0];
    /** Per-row or per-token dot products of one microkernel call. */
    final float[] dots = new float[16];

    /** A widened weight vector (norm scales and biases). */
    float[] weights(int length) {
        if (weights.length < length) {
            weights = new float[length];
        }
        return weights;
    }

    /** Attention scores of one query over its context. */
    float[] scores(int length) {
        if (scores.length < length) {
            scores = new float[Math.max(length, scores.length * 3 / 2)];
        }
        return scores;
    }

    /** One factor per query head of an attention unit (the softmax's 1 / Σ). */
    float[] headScales(int length) {
        if (headScales.length < length) {
            headScales = new float[length];
        }
        return headScales;
    }

    /** Where each cached key row of one sequence starts (element index in the cache's pool). */
    long[] rows(int length) {
        if (rows.length < length) {
            rows = new long[Math.max(length, rows.length * 3 / 2)];
        }
        return rows;
    }

    /** One head's keys packed for encoder attention. */
    float[] keyPanels(int length) {
        if (keyPanels.length < length) {
            keyPanels = new float[length];
        }
        return keyPanels;
    }

    /** One head's values packed for encoder attention. */
    float[] valuePanels(int length) {
        if (valuePanels.length < length) {
            valuePanels = new float[length];
        }
        return valuePanels;
    }

    /** A tile of panel products whose destination is narrower than the panel. */
    float[] tile(int length) {
        if (tile.length < length) {
            tile = new float[length];
        }
        return tile;
    }

    /** Attention output of one head, a second widened vector, or per-row factors. */
    float[] accumulator(int length) {
        if (accumulator.length < length) {
            accumulator = new float[length];
        }
        return accumulator;
    }
}
