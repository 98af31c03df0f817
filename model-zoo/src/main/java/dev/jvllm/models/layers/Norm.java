package dev.jvllm.models.layers;

import dev.jvllm.spi.Backend;
import dev.jvllm.spi.Tensor;

/** A row-wise normalization of activations ([tokens, features]): {@link RmsNorm}, {@link LayerNorm}. */
@FunctionalInterface
public interface Norm {

    void apply(Backend backend, Tensor x, Tensor out);
}
