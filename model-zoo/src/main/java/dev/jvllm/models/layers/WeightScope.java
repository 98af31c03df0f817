package dev.jvllm.models.layers;

import dev.jvllm.spi.Backend;
import dev.jvllm.spi.Tensor;
import dev.jvllm.weights.Checkpoint;
import dev.jvllm.weights.WeightTensor;
import dev.jvllm.weights.WeightValues;
import dev.jvllm.weights.WeightsException;

import java.util.List;
import java.util.Optional;

/**
 * Checkpoint tensors under a name prefix ("model.layers.3."), handed to the backend: the
 * declarative side of loading — a layer says which names it needs, nothing else.
 */
public record WeightScope(Checkpoint checkpoint, Backend backend, String prefix) {

    public static WeightScope root(Checkpoint checkpoint, Backend backend) {
        return new WeightScope(checkpoint, backend, "");
    }

    public WeightScope child(String name) {
        return new WeightScope(checkpoint, backend, prefix + name + ".");
    }

    /** The tensor {@code prefix + name}, checked to have {@code shape} (a vector when one dimension is given). */
    public Tensor tensor(String name, long... shape) {
        return backend.weight(check(checkpoint.get(prefix + name), shape));
    }

    /** The elements of {@code prefix + name}, checked to have {@code shape}, as float32 on the heap (see {@link WeightValues}). */
    public float[] floats(String name, long... shape) {
        return WeightValues.floats(check(checkpoint.get(prefix + name), shape));
    }

    /**
     * {@code <name>.weight} of each name ({@code rows[i] × cols}) stacked into one weight where the
     * backend stacks ({@link Backend#stackedWeight}), else empty.
     */
    public Optional<Tensor> stackedWeights(List<String> names, long cols, long... rows) {
        List<WeightTensor> parts = new java.util.ArrayList<>();
        for (int i = 0; i < names.size(); i++) {
            parts.add(check(checkpoint.get(prefix + names.get(i) + ".weight"), new long[]{rows[i], cols}));
        }
        return Optional.ofNullable(backend.stackedWeight(parts));
    }

    public Optional<Tensor> optional(String name, long... shape) {
        return checkpoint.find(prefix + name).map(t -> backend.weight(check(t, shape)));
    }

    public boolean has(String name) {
        return checkpoint.find(prefix + name).isPresent();
    }

    private static WeightTensor check(WeightTensor t, long[] shape) {
        long[] actual = t.shape();
        if (!java.util.Arrays.equals(actual, shape)) {
            throw new WeightsException("tensor '" + t.name() + "' in " + t.file().getFileName() + " has shape "
                    + java.util.Arrays.toString(actual) + ", expected " + java.util.Arrays.toString(shape));
        }
        return t;
    }
}
