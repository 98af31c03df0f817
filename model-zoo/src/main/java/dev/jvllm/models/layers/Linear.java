package dev.jvllm.models.layers;

import dev.jvllm.spi.Activation;
import dev.jvllm.spi.Backend;
import dev.jvllm.spi.Tensor;

import java.util.Arrays;

/**
 * {@code y = x · Wᵀ + b}: weight [out, in], optional bias; with {@code clampLimit > 0} the output
 * is clamped to [-limit, limit] (MPT's clip_qkv).
 */
public record Linear(Tensor weight, Tensor bias, int inFeatures, int outFeatures, float clampLimit) {

    public Linear(Tensor weight, Tensor bias, int inFeatures, int outFeatures) {
        this(weight, bias, inFeatures, outFeatures, 0f);
    }

    /** The same projection with its output clamped to [-limit, limit]. */
    public Linear clamped(float limit) {
        return new Linear(weight, bias, inFeatures, outFeatures, limit);
    }

    /** Loads {@code <name>.weight} (and {@code <name>.bias} when {@code withBias}). */
    public static Linear load(WeightScope scope, String name, int in, int out, boolean withBias) {
        WeightScope s = scope.child(name);
        return new Linear(s.tensor("weight", out, in), withBias ? s.tensor("bias", out) : null, in, out);
    }

    /**
     * A fused projection ({@code qkv_proj}, {@code gate_up_proj}): {@code <name>.weight} holds the
     * blocks' rows one after another. Each block is a row view of the loaded weight, nothing copied.
     */
    public static Linear[] loadRowBlocks(WeightScope scope, String name, int in, int... outs) {
        Tensor fused = scope.forRowBlocks(outs).child(name).tensor("weight", Arrays.stream(outs).asLongStream().sum(), in);
        return rowBlocks(fused, new Tensor[outs.length], in, outs);
    }

    /** Projections that are consecutive row blocks of one weight ([Σ outs, in]), with their own biases (or nulls). */
    public static Linear[] rowBlocks(Tensor fused, Tensor[] biases, int in, int... outs) {
        Linear[] blocks = new Linear[outs.length];
        int start = 0;
        for (int i = 0; i < outs.length; i++) {
            blocks[i] = new Linear(fused.rows(start, outs[i]), biases[i], in, outs[i]);
            start += outs[i];
        }
        return blocks;
    }

    /**
     * The projections {@code <name>.weight} (and {@code .bias} when {@code withBias}) of each name,
     * all reading one input: row blocks of one stacked weight where the backend stacks
     * ({@link WeightScope#siblingWeights}), else each loaded on its own.
     */
    public static Linear[] loadSiblings(WeightScope scope, java.util.List<String> names, int in, boolean withBias,
                                        int... outs) {
        long[] rows = Arrays.stream(outs).asLongStream().toArray();
        Tensor[] biases = new Tensor[names.size()];
        for (int i = 0; i < names.size() && withBias; i++) biases[i] = scope.child(names.get(i)).tensor("bias", outs[i]);
        Tensor[] weights = scope.siblingWeights(names, in, rows);
        Linear[] each = new Linear[names.size()];
        for (int i = 0; i < each.length; i++) each[i] = new Linear(weights[i], biases[i], in, outs[i]);
        return each;
    }

    /** As {@link #loadRowBlocks(WeightScope, String, int, int...)}, with {@code <name>.bias} split the same way when {@code withBias}. */
    public static Linear[] loadRowBlocks(WeightScope scope, String name, int in, boolean withBias, int... outs) {
        Linear[] blocks = loadRowBlocks(scope, name, in, outs);
        if (!withBias) {
            return blocks;
        }
        int total = Arrays.stream(outs).sum();
        Tensor bias = scope.child(name).tensor("bias", total).reshape(total, 1);
        int start = 0;
        for (int i = 0; i < outs.length; i++) {
            blocks[i] = new Linear(blocks[i].weight(), bias.rows(start, outs[i]).reshape(1, outs[i]), in, outs[i]);
            start += outs[i];
        }
        return blocks;
    }

    /**
     * {@code <name>.weight} [out, in] with each row scaled to unit L2 norm at load: Baichuan 2's
     * NormHead, whose logits are {@code x · normalize(W)ᵀ}.
     */
    public static Linear loadUnitRows(WeightScope scope, String name, int in, int out) {
        float[] w = scope.child(name).floats("weight", out, in);
        for (int r = 0; r < out; r++) {
            double sumSquares = 0;
            for (int c = 0; c < in; c++) sumSquares += (double) w[r * in + c] * w[r * in + c];
            // torch.nn.functional.normalize: divide by max(norm, 1e-12).
            float scale = (float) (1 / Math.max(Math.sqrt(sumSquares), 1e-12));
            for (int c = 0; c < in; c++) w[r * in + c] *= scale;
        }
        return new Linear(scope.backend().constant(w, out, in), null, in, out);
    }

    public void apply(Backend backend, Tensor x, Tensor out) {
        backend.linear(x, weight, bias, out);
        if (clampLimit > 0) {
            backend.clamp(out, clampLimit, out);
        }
    }

    /** {@code outs[i] = linears[i](x)}, handed to the backend as one call ({@link Backend#linears}). */
    public static void applyAll(Backend backend, Tensor x, Linear[] linears, Tensor[] outs) {
        Tensor[] weights = new Tensor[linears.length];
        Tensor[] biases = new Tensor[linears.length];
        for (int i = 0; i < linears.length; i++) {
            weights[i] = linears[i].weight;
            biases[i] = linears[i].bias;
        }
        backend.linears(x, weights, biases, outs);
        for (int i = 0; i < linears.length; i++) {
            if (linears[i].clampLimit > 0) backend.clamp(outs[i], linears[i].clampLimit, outs[i]);
        }
    }

    /** Whether this is a plain product: no bias, no clamp. */
    boolean plain() {
        return bias == null && clampLimit <= 0;
    }

    /** {@code out = fn(y)}, in one kernel where the output is not clamped. */
    public void applyActivated(Backend backend, Activation fn, Tensor x, Tensor out) {
        if (clampLimit > 0) {
            apply(backend, x, out);
            backend.activation(fn, out, out);
        } else {
            backend.linearActivation(fn, x, weight, bias, out);
        }
    }

    /** {@code out = y + residual}, in one kernel where the output is not clamped. */
    public void applyPlusResidual(Backend backend, Tensor x, Tensor residual, Tensor out) {
        if (clampLimit > 0) {
            apply(backend, x, out);
            backend.add(out, residual, out);
        } else {
            backend.linearResidual(x, weight, bias, residual, out);
        }
    }
}
