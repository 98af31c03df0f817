package dev.jvllm.models.layers;

import dev.jvllm.spi.Backend;
import dev.jvllm.spi.Tensor;

/** {@code y = x · Wᵀ + b}: weight [out, in], optional bias. */
public record Linear(Tensor weight, Tensor bias, int inFeatures, int outFeatures) {

    /** Loads {@code <name>.weight} (and {@code <name>.bias} when {@code withBias}). */
    public static Linear load(WeightScope scope, String name, int in, int out, boolean withBias) {
        WeightScope s = scope.child(name);
        return new Linear(s.tensor("weight", out, in), withBias ? s.tensor("bias", out) : null, in, out);
    }

    public void apply(Backend backend, Tensor x, Tensor out) {
        backend.linear(x, weight, bias, out);
    }
}
