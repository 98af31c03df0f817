package dev.jvllm.models.layers;

import dev.jvllm.spi.Backend;
import dev.jvllm.spi.Tensor;
import dev.jvllm.weights.Checkpoint;
import dev.jvllm.weights.Int4Weight;
import dev.jvllm.weights.WeightTensor;
import dev.jvllm.weights.WeightValues;
import dev.jvllm.weights.WeightsException;

import java.util.List;
import java.util.Optional;

/**
 * Checkpoint tensors under a name prefix ("model.layers.3."), handed to the backend: the
 * declarative side of loading — a layer says which names it needs, nothing else.
 *
 * @param takesInt4 whether 4-bit weights go to a backend that reads them as they are
 *                  ({@link Backend#int4Weight}); false decodes them, for weights that only
 *                  unquantized kernels read ({@link #decoded})
 */
public record WeightScope(Checkpoint checkpoint, Backend backend, String prefix, boolean takesInt4) {

    public WeightScope(Checkpoint checkpoint, Backend backend, String prefix) {
        this(checkpoint, backend, prefix, true);
    }

    public static WeightScope root(Checkpoint checkpoint, Backend backend) {
        return new WeightScope(checkpoint, backend, "");
    }

    public WeightScope child(String name) {
        return new WeightScope(checkpoint, backend, prefix + name + ".", takesInt4);
    }

    /** This scope with its weights decoded even where the backend reads 4-bit ones (a mixture's experts). */
    public WeightScope decoded() {
        return new WeightScope(checkpoint, backend, prefix, false);
    }

    /**
     * This scope for a fused weight that a model slices into row blocks of these sizes: decoded where
     * a block does not start on a 4-bit weight's tile of {@value Int4Weight#TILE_ROWS} rows, whose row
     * views must.
     */
    public WeightScope forRowBlocks(int... blockRows) {
        for (int rows : blockRows) {
            if (rows % Int4Weight.TILE_ROWS != 0) return decoded();
        }
        return this;
    }

    /** The tensor {@code prefix + name}, checked to have {@code shape} (a vector when one dimension is given). */
    public Tensor tensor(String name, long... shape) {
        Optional<Int4Weight> packed = int4(prefix + name);
        if (packed.isPresent()) return int4Tensor(packed.get(), shape);
        return backend.weight(check(checkpoint.get(prefix + name), shape));
    }

    /** The 4-bit form of a weight, where the checkpoint has one and the backend multiplies by it as it is. */
    private Optional<Int4Weight> int4(String name) {
        return takesInt4 && backend.readsInt4Weights() ? checkpoint.int4(name) : Optional.empty();
    }

    private Tensor int4Tensor(Int4Weight weight, long[] shape) {
        try (weight) {
            return backend.int4Weight(checkInt4(weight, shape));
        }
    }

    /** The elements of {@code prefix + name}, checked to have {@code shape}, as float32 on the heap (see {@link WeightValues}). */
    public float[] floats(String name, long... shape) {
        return WeightValues.floats(check(checkpoint.get(prefix + name), shape));
    }

    /**
     * {@code <name>.weight} of each name ({@code rows[i] × cols}): row views of one weight where the
     * backend stacks them ({@link Backend#stackedWeight}, or {@link Backend#stackedInt4Weight} where
     * every part has a 4-bit form the backend reads), else each its own weight (a 4-bit part from the
     * same repack).
     */
    public Tensor[] siblingWeights(List<String> names, long cols, long... rows) {
        if (takesInt4 && backend.readsInt4Weights()) {
            Tensor[] packed = int4Siblings(names, cols, rows);
            if (packed != null) return packed;
        }
        List<WeightTensor> parts = new java.util.ArrayList<>();
        for (int i = 0; i < names.size(); i++) {
            parts.add(check(checkpoint.get(prefix + names.get(i) + ".weight"), new long[]{rows[i], cols}));
        }
        Tensor stacked = backend.stackedWeight(parts);
        if (stacked != null) return rowViews(stacked, rows);
        Tensor[] each = new Tensor[names.size()];
        for (int i = 0; i < each.length; i++) each[i] = tensor(names.get(i) + ".weight", rows[i], cols);
        return each;
    }

    /**
     * The parts as 4-bit weights, stacked where the backend stacks them, else each uploaded from the
     * same repack; null where some part has no 4-bit form (then they are decoded and stacked as any
     * weights).
     */
    private Tensor[] int4Siblings(List<String> names, long cols, long[] rows) {
        List<Int4Weight> parts = new java.util.ArrayList<>();
        try {
            for (int i = 0; i < names.size(); i++) {
                Optional<Int4Weight> part = checkpoint.int4(prefix + names.get(i) + ".weight");
                if (part.isEmpty()) return null;
                parts.add(part.get());
                checkInt4(part.get(), new long[]{rows[i], cols});
            }
            Tensor stacked = backend.stackedInt4Weight(parts);
            if (stacked != null) return rowViews(stacked, rows);
            Tensor[] each = new Tensor[parts.size()];
            for (int i = 0; i < each.length; i++) each[i] = backend.int4Weight(parts.get(i));
            return each;
        } finally {
            parts.forEach(Int4Weight::close);
        }
    }

    private static Tensor[] rowViews(Tensor stacked, long[] rows) {
        Tensor[] views = new Tensor[rows.length];
        int start = 0;
        for (int i = 0; i < rows.length; i++) {
            views[i] = stacked.rows(start, (int) rows[i]);
            start += (int) rows[i];
        }
        return views;
    }

    public Optional<Tensor> optional(String name, long... shape) {
        Optional<Int4Weight> packed = int4(prefix + name);
        if (packed.isPresent()) return Optional.of(int4Tensor(packed.get(), shape));
        return checkpoint.find(prefix + name).map(t -> backend.weight(check(t, shape)));
    }

    public boolean has(String name) {
        return checkpoint.contains(prefix + name);
    }

    private static Int4Weight checkInt4(Int4Weight weight, long[] shape) {
        long[] actual = {weight.rows(), weight.cols()};
        if (!java.util.Arrays.equals(actual, shape)) {
            throw new WeightsException("packed weight '" + weight.name() + "' in " + weight.file().getFileName() + " is "
                    + java.util.Arrays.toString(actual) + ", expected " + java.util.Arrays.toString(shape));
        }
        return weight;
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
