package dev.jvllm.models.layers;

import dev.jvllm.spi.Backend;
import dev.jvllm.spi.Tensor;

/** The position-wise feed-forward half of a decoder layer ({@link Mlp}, or {@code GatedMlp::forward}). */
@FunctionalInterface
public interface FeedForward {

    void forward(Backend backend, Tensor x, Scratch scratch, Tensor out);

    /**
     * This block as a pre-norm layer runs it, as {@link Attention}'s counterpart: reads
     * {@code input}, adds its result into the residual stream through {@code join} and returns
     * the next branch's input. The default applies the norm, runs the block into the join's
     * scratch and joins that; {@link GatedMlp} computes the norm inside its gate and up products
     * and adds its down projection into the stream directly.
     */
    default BranchInput forward(Backend backend, BranchInput input, Scratch scratch, ResidualJoin join) {
        forward(backend, input.normalized(backend), scratch, join.product());
        return join.add(backend, join.product());
    }
}
