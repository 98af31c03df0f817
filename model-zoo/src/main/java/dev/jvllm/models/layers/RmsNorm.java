package dev.jvllm.models.layers;

import dev.jvllm.spi.Backend;
import dev.jvllm.spi.Tensor;

/** Root-mean-square layer norm (arXiv:1910.07467); weightOffset 1 gives Gemma's (1 + w) form. */
public record RmsNorm(Tensor weight, float eps, float weightOffset) implements Norm {

    public static RmsNorm load(WeightScope scope, String name, int size, double eps) {
        return load(scope, name, size, eps, 0f);
    }

    public static RmsNorm load(WeightScope scope, String name, int size, double eps, float weightOffset) {
        return new RmsNorm(scope.child(name).tensor("weight", size), (float) eps, weightOffset);
    }

    @Override
    public void apply(Backend backend, Tensor x, Tensor out) {
        backend.rmsNorm(x, weight, eps, weightOffset, out);
    }

    @Override
    public void addThenApply(Backend backend, Tensor x, Tensor delta, Tensor out) {
        backend.addRmsNorm(x, delta, weight, eps, weightOffset, out);
    }

    @Override
    public void linearThenAddThenApply(Backend backend, Tensor input, Tensor linearWeight, Tensor product, Tensor x,
                                       Tensor out) {
        backend.linearAddRmsNorm(input, linearWeight, product, x, weight, eps, weightOffset, out);
    }
}
