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
 */
public record AttentionParams(int numHeads, int numKvHeads, int headDim, float scale,
                              int slidingWindow, float logitSoftcap, float[] alibiSlopes) {

    public AttentionParams {
        if (numHeads % numKvHeads != 0) {
            throw new IllegalArgumentException("num heads " + numHeads + " is not a multiple of kv heads " + numKvHeads);
        }
    }

    /** Plain causal multi-head / grouped-query attention scaled by 1/sqrt(headDim). */
    public static AttentionParams causal(int numHeads, int numKvHeads, int headDim) {
        return new AttentionParams(numHeads, numKvHeads, headDim, (float) (1.0 / Math.sqrt(headDim)), 0, 0f, null);
    }
}
