package dev.jvllm.models.layers;

import dev.jvllm.engine.ForwardBatch;
import dev.jvllm.spi.Backend;
import dev.jvllm.spi.KvCache;
import dev.jvllm.spi.KvCacheSpec;
import dev.jvllm.spi.Tensor;

/**
 * The token-mixing half of a decoder layer: {@link SelfAttention} over cached keys and values, or
 * {@link MultiHeadLatentAttention} over a cached latent. Each says what a cache slot must hold.
 */
public interface Attention {

    /** Attends x ([T, hidden]) over its sequences' cached context and this step's tokens; result into out. */
    void forward(Backend backend, Tensor x, Tensor positions, KvCache cache, ForwardBatch batch, Scratch scratch,
                 Tensor out);

    /** The cache a model of {@code layers} such layers needs for {@code numBlocks} blocks of {@code blockSize}. */
    KvCacheSpec cacheSpec(int layers, int numBlocks, int blockSize);
}
