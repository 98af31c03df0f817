package dev.jvllm.spi;

/**
 * Per-layer attention settings.
 *
 * @param numHeads      query heads
 * @param numKvHeads    key/value heads (grouped-query attention when fewer than numHeads)
 * @param headDim       size of one head
 * @param scale         factor on q·k (usually 1/sqrt(headDim))
 * @param slidingWindow attend only to the last this-many positions; 0 for unlimited
 * @param logitSoftcap  tanh soft-capping of scores (Gemma 2); 0 for none
 * @param alibiSlopes   per-head ALiBi slopes, or null
 * @param relativeBias  a learned bias per head and relative position added to the scores (T5), or null
 */
public record AttentionParams(int numHeads, int numKvHeads, int headDim, float scale,
                              int slidingWindow, float logitSoftcap, float[] alibiSlopes, RelativeBias relativeBias) {

    public AttentionParams {
        if (numHeads % numKvHeads != 0) {
            throw new IllegalArgumentException("num heads " + numHeads + " is not a multiple of kv heads " + numKvHeads);
        }
        if (relativeBias != null && relativeBias.values().length != numHeads * (2 * relativeBias.maxDistance() + 1)) {
            throw new IllegalArgumentException("a relative bias of " + relativeBias.values().length + " values for " + numHeads
                    + " heads and distances up to " + relativeBias.maxDistance());
        }
    }

    /** Without a relative position bias. */
    public AttentionParams(int numHeads, int numKvHeads, int headDim, float scale, int slidingWindow, float logitSoftcap,
                           float[] alibiSlopes) {
        this(numHeads, numKvHeads, headDim, scale, slidingWindow, logitSoftcap, alibiSlopes, null);
    }

    /** These settings with a relative position bias. */
    public AttentionParams withRelativeBias(RelativeBias bias) {
        return new AttentionParams(numHeads, numKvHeads, headDim, scale, slidingWindow, logitSoftcap, alibiSlopes, bias);
    }

    /**
     * What the score of query position i and key position j gains, per head, by the distance j − i
     * (T5's bucketed relative positions, resolved to values): {@code values[h · (2D + 1) + clamp(j − i, −D, D) + D]}
     * with D = {@code maxDistance}, the distance past which the bias no longer changes.
     */
    public record RelativeBias(float[] values, int maxDistance) {

        public RelativeBias {
            if (maxDistance < 0) throw new IllegalArgumentException("a relative bias up to distance " + maxDistance);
        }

        /** The bias of {@code head} for key position − query position = {@code relative}. */
        public float of(int head, int relative) {
            int width = 2 * maxDistance + 1;
            return values[head * width + Math.max(-maxDistance, Math.min(maxDistance, relative)) + maxDistance];
        }
    }

    /** Plain causal multi-head / grouped-query attention scaled by 1/sqrt(headDim). */
    public static AttentionParams causal(int numHeads, int numKvHeads, int headDim) {
        return new AttentionParams(numHeads, numKvHeads, headDim, (float) (1.0 / Math.sqrt(headDim)), 0, 0f, null);
    }
}
