package dev.jvllm.models.layers;

import dev.jvllm.spi.Backend;
import dev.jvllm.spi.Tensor;

/** Layer normalization (arXiv:1607.06450): {@code (x - mean) / sqrt(var + eps) * weight (+ bias)}. */
public record LayerNorm(Tensor weight, Tensor bias, float eps) implements Norm {

    /** Loads {@code <name>.weight} and, when {@code withBias}, {@code <name>.bias}. */
    public static LayerNorm load(WeightScope scope, String name, int size, double eps, boolean withBias) {
        WeightScope s = scope.child(name);
        return new LayerNorm(s.tensor("weight", size), withBias ? s.tensor("bias", size) : null, (float) eps);
    }

    /** Loads {@code <name>.weight} and {@code <name>.bias}. */
    public static LayerNorm load(WeightScope scope, String name, int size, double eps) {
        return load(scope, name, size, eps, true);
    }

    @Override
    public void apply(Backend backend, Tensor x, Tensor out) {
        backend.layerNorm(x, weight, bias, eps, out);
    }
}
