package dev.jvllm.spi;

/**
 * Shape of the paged KV cache: for each of {@code layers} layers, {@code numBlocks} blocks of
 * {@code blockSize} token slots, each slot holding {@code kvHeads × headDim} keys and as many values.
 * Slot {@code s} lives in block {@code s / blockSize} at offset {@code s % blockSize}.
 */
public record KvCacheSpec(int layers, int numBlocks, int blockSize, int kvHeads, int headDim) {

    public KvCacheSpec {
        if (layers <= 0 || numBlocks <= 0 || blockSize <= 0 || kvHeads <= 0 || headDim <= 0) {
            throw new IllegalArgumentException("KV cache dimensions must be positive: " + this);
        }
    }

    /** Bytes of one token slot across all layers, keys and values, for elements of {@code elementBytes}. */
    public long bytesPerToken(int elementBytes) {
        return 2L * layers * kvHeads * headDim * elementBytes;
    }

    /** How many blocks a byte budget holds. */
    public static int blocksFor(long budgetBytes, int layers, int blockSize, int kvHeads, int headDim, int elementBytes) {
        long perBlock = 2L * layers * blockSize * kvHeads * headDim * elementBytes;
        return (int) Math.min(Integer.MAX_VALUE, budgetBytes / perBlock);
    }
}
