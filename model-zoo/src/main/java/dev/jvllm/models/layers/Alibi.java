package dev.jvllm.models.layers;

/**
 * Per-head slopes of ALiBi (Press et al., arXiv:2108.12409): head h adds {@code slope[h] · (j − i)}
 * to the score of query i for key j, instead of position embeddings.
 */
public final class Alibi {

    private Alibi() {
    }

    /**
     * The paper's slopes, as BLOOM, Falcon and Baichuan compute them: a geometric sequence from
     * {@code 2^(-8/n)} for the largest power of two n not above the head count, the remaining heads
     * taking every other slope of the sequence for 2n.
     */
    public static float[] slopes(int heads) {
        int n = Integer.highestOneBit(heads);
        float[] out = new float[heads];
        double base = Math.pow(2, -8.0 / n);
        for (int i = 0; i < n; i++) {
            out[i] = (float) Math.pow(base, i + 1);
        }
        double extraBase = Math.pow(2, -4.0 / n);
        for (int i = 0; i < heads - n; i++) {
            out[n + i] = (float) Math.pow(extraBase, 2 * i + 1);
        }
        return out;
    }

    /**
     * MPT's slopes: {@code 2^(-maxBias·k/n)} for k = 1..n, n the head count rounded up to a power of
     * two; with fewer heads, the odd-numbered slopes first, then the even ones.
     */
    public static float[] mptSlopes(int heads, double maxBias) {
        int n = heads == 1 ? 1 : Integer.highestOneBit(heads - 1) << 1;
        float[] all = new float[n];
        for (int k = 1; k <= n; k++) {
            all[k - 1] = (float) (1.0 / Math.pow(2, k * (maxBias / n)));
        }
        if (n == heads) {
            return all;
        }
        float[] out = new float[heads];
        int at = 0;
        for (int i = 1; i < n && at < heads; i += 2) out[at++] = all[i];
        for (int i = 0; i < n && at < heads; i += 2) out[at++] = all[i];
        return out;
    }

    /** Each slope times {@code factor} (Falcon scales the biased scores by 1/√headDim). */
    public static float[] scaled(float[] slopes, float factor) {
        float[] out = slopes.clone();
        for (int i = 0; i < out.length; i++) out[i] *= factor;
        return out;
    }
}
