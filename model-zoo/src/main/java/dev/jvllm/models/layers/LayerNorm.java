package dev.jvllm.models.layers;

import dev.jvllm.spi.Backend;
import dev.jvllm.spi.Tensor;

/** Layer normalization (arXiv:1607.06450) with a learned scale and an optional shift. */
public record LayerNorm(Tensor weight, Tensor bias, float eps) {

    /** {@code <name>.weight} and {@code <name>.bias}, or the older {@code gamma}/{@code beta} names. */
    public static LayerNorm load(WeightScope scope, String name, int size, double eps) {
        WeightScope s = scope.child(name);
        if (!s.has("weight") && s.has("gamma")) {
            return new LayerNorm(s.tensor("gamma", size), s.tensor("beta", size), (float) eps);
        }
        return new LayerNorm(s.tensor("weight", size), s.tensor("bias", size), (float) eps);
    }

    public void apply(Backend backend, Tensor x, Tensor out) {
        backend.layerNorm(x, weight, bias, eps, out);
    }
}
