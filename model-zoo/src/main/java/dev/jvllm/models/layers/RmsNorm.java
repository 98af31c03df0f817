package dev.jvllm.models.layers;

import dev.jvllm.spi.Backend;
import dev.jvllm.spi.Tensor;

/** Root-mean-square layer norm (arXiv:1910.07467); weightOffset 1 gives Gemma's (1 + w) form. */
public record RmsNorm(Tensor weight, float eps, float weightOffset) {

    public static RmsNorm load(WeightScope scope, String name, int size, double eps) {
        return new RmsNorm(scope.child(name).tensor("weight", size), (float) eps, 0f);
    }

    public void apply(Backend backend, Tensor x, Tensor out) {
        backend.rmsNorm(x, weight, eps, weightOffset, out);
    }
}
