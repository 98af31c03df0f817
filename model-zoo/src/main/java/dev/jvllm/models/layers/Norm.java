package dev.jvllm.models.layers;

import dev.jvllm.spi.Backend;
import dev.jvllm.spi.Tensor;

/** A row-wise normalization ({@link LayerNorm}, or {@code RmsNorm::apply}). */
@FunctionalInterface
public interface Norm {

    void apply(Backend backend, Tensor x, Tensor out);
}
