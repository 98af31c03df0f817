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

    /**
     * This attention as a pre-norm layer runs it: it reads the residual stream under the layer's
     * norm ({@code input}, the norm maybe still to apply) and adds its result into the stream
     * through {@code join}; returns the input of the branch after it. The default applies the norm,
     * attends into the join's scratch and joins that; {@link SelfAttention} instead computes the
     * norm inside its q/k/v products and adds its o projection into the stream directly.
     */
    default BranchInput forward(Backend backend, BranchInput input, Tensor positions, KvCache cache, ForwardBatch batch,
                                Scratch scratch, ResidualJoin join) {
        forward(backend, input.normalized(backend), positions, cache, batch, scratch, join.product());
        return join.add(backend, join.product());
    }

    /** The cache a model of {@code layers} such layers needs for {@code numBlocks} blocks of {@code blockSize}. */
    KvCacheSpec cacheSpec(int layers, int numBlocks, int blockSize);
}
