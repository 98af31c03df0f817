package dev.jvllm.models.layers;

import dev.jvllm.spi.Backend;
import dev.jvllm.spi.Tensor;

/**
 * Layer normalization (arXiv:1607.06450): {@code (x - mean) / sqrt(var + eps) * weight (+ bias)}.
 * The GPT-style decoders' norms and BERT's post-norms alike.
 */
public record LayerNorm(Tensor weight, Tensor bias, float eps) implements Norm {

    /**
     * Loads {@code <name>.weight} and, when {@code withBias}, {@code <name>.bias}; checkpoints with the
     * older {@code gamma}/{@code beta} names (original BERT conversions) are read under those.
     */
    public static LayerNorm load(WeightScope scope, String name, int size, double eps, boolean withBias) {
        WeightScope s = scope.child(name);
        if (!s.has("weight") && s.has("gamma")) {
            return new LayerNorm(s.tensor("gamma", size), withBias ? s.tensor("beta", size) : null, (float) eps);
        }
        return new LayerNorm(s.tensor("weight", size), withBias ? s.tensor("bias", size) : null, (float) eps);
    }

    /** Loads {@code <name>.weight} and {@code <name>.bias} (or {@code gamma}/{@code beta}). */
    public static LayerNorm load(WeightScope scope, String name, int size, double eps) {
        return load(scope, name, size, eps, true);
    }

    @Override
    public void apply(Backend backend, Tensor x, Tensor out) {
        backend.layerNorm(x, weight, bias, eps, out);
    }

    /** {@code x += delta}, then {@code out = norm(x)} ({@link Backend#addLayerNorm}: out may be delta). */
    @Override
    public void addThenApply(Backend backend, Tensor x, Tensor delta, Tensor out) {
        backend.addLayerNorm(x, delta, weight, bias, eps, out);
    }
}
