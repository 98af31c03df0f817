package dev.jvllm.models.layers;

import dev.jvllm.spi.Backend;
import dev.jvllm.spi.Tensor;

/** A row-wise normalization of activations ([tokens, features]): {@link RmsNorm}, {@link LayerNorm}. */
@FunctionalInterface
public interface Norm {

    void apply(Backend backend, Tensor x, Tensor out);

    /** {@code x += delta}, then {@code out = norm(x)}; a backend may do both in one pass. */
    default void addThenApply(Backend backend, Tensor x, Tensor delta, Tensor out) {
        backend.add(x, delta, x);
        apply(backend, x, out);
    }

    /**
     * {@code x += input · weightᵀ} (the product through the scratch {@code product}), then
     * {@code out = norm(x)}; a backend may do the product with the add and the norm.
     */
    default void linearThenAddThenApply(Backend backend, Tensor input, Tensor weight, Tensor product, Tensor x, Tensor out) {
        backend.linear(input, weight, null, product);
        addThenApply(backend, x, product, out);
    }
}
