package dev.jvllm.spi;

/**
 * Shape of the paged KV cache: for each of {@code layers} layers, {@code numBlocks} blocks of
 * {@code blockSize} token slots. Slot {@code s} lives in block {@code s / blockSize} at offset
 * {@code s % blockSize}. What a slot holds follows the model's attention:
 * <ul>
 *   <li>{@link Layout#KEYS_AND_VALUES}: {@code kvHeads × headDim} keys and as many values
 *       (multi-head and grouped-query attention);</li>
 *   <li>{@link Layout#LATENT}: one row of {@code headDim} features and nothing else — multi-head
 *       latent attention's compressed KV followed by its decoupled rotary key (DeepSeek-V2,
 *       arXiv:2405.04434 §2.1), from which every head's keys and values are derived.</li>
 * </ul>
 */
public record KvCacheSpec(int layers, int numBlocks, int blockSize, int kvHeads, int headDim, Layout layout) {

    /** What one token slot of a layer stores. */
    public enum Layout {
        /** A key pool and a value pool, each {@code kvHeads × headDim} per slot. */
        KEYS_AND_VALUES,
        /** One pool of {@code headDim} (kvHeads is 1) per slot: the latent vector and the rotary key. */
        LATENT
    }

    public KvCacheSpec {
        if (layers <= 0 || numBlocks <= 0 || blockSize <= 0 || kvHeads <= 0 || headDim <= 0) {
            throw new IllegalArgumentException("KV cache dimensions must be positive: " + layers + " layers, "
                    + numBlocks + " blocks of " + blockSize + ", " + kvHeads + " kv heads of " + headDim);
        }
        if (layout == null) {
            throw new IllegalArgumentException("KV cache layout must be given");
        }
        if (layout == Layout.LATENT && kvHeads != 1) {
            throw new IllegalArgumentException("a latent KV cache has one row per slot, not " + kvHeads + " heads");
        }
    }

    /** Keys and values of {@code kvHeads × headDim} per slot. */
    public KvCacheSpec(int layers, int numBlocks, int blockSize, int kvHeads, int headDim) {
        this(layers, numBlocks, blockSize, kvHeads, headDim, Layout.KEYS_AND_VALUES);
    }

    /** A latent cache: per slot one row of {@code latentWidth} features (compressed KV + rotary key). */
    public static KvCacheSpec latent(int layers, int numBlocks, int blockSize, int latentWidth) {
        return new KvCacheSpec(layers, numBlocks, blockSize, 1, latentWidth, Layout.LATENT);
    }

    /** Elements of one pool's slot: {@code kvHeads × headDim}. */
    public int slotWidth() {
        return kvHeads * headDim;
    }

    /** Pools per layer: 2 (keys, values) or 1 (the latent rows). */
    public int poolsPerLayer() {
        return layout == Layout.LATENT ? 1 : 2;
    }

    /** Bytes of one token slot across all layers and pools, for elements of {@code elementBytes}. */
    public long bytesPerToken(int elementBytes) {
        return (long) poolsPerLayer() * layers * slotWidth() * elementBytes;
    }

    @Override
    public String toString() {
        return "KvCacheSpec[" + layers + " layers, " + numBlocks + " blocks of " + blockSize + " tokens, "
                + (layout == Layout.LATENT ? "latent rows of " + headDim : kvHeads + " kv heads of " + headDim) + "]";
    }
}
