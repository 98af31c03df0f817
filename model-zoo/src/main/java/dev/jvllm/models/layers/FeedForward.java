package dev.jvllm.models.layers;

import dev.jvllm.spi.Backend;
import dev.jvllm.spi.Tensor;

/** The position-wise feed-forward half of a decoder layer ({@link Mlp}, or {@code GatedMlp::forward}). */
@FunctionalInterface
public interface FeedForward {

    void forward(Backend backend, Tensor x, Scratch scratch, Tensor out);

    /** {@code out = residual + forward(x)} (out may be residual); a block whose last step is a product may fuse the add into it. */
    default void forwardPlusResidual(Backend backend, Tensor x, Scratch scratch, Tensor residual, Tensor out) {
        Tensor branch = scratch.get("feedForward.branch", x.rows(), out.cols());
        forward(backend, x, scratch, branch);
        backend.add(residual, branch, out);
    }

    /**
     * forward into the scratch {@code out}, then {@code norm.addThenApply(residual, out, normed)}: the
     * block's output joined to the residual stream and the next norm. A block whose last step is a
     * plain product hands it to the norm with the add ({@link Norm#linearThenAddThenApply}).
     */
    default void forwardThenAddNorm(Backend backend, Tensor x, Scratch scratch, Tensor out, Tensor residual, Norm norm,
                                    Tensor normed) {
        forward(backend, x, scratch, out);
        norm.addThenApply(backend, residual, out, normed);
    }
}
