package dev.jvllm.models.layers;

import dev.jvllm.spi.Backend;
import dev.jvllm.spi.Tensor;

import java.util.HashMap;
import java.util.Map;
import java.util.function.BiFunction;

/**
 * The activation buffers of a forward pass, kept between passes and grown when a batch has more
 * tokens than any before, so steady-state decoding allocates nothing.
 */
public final class Scratch {

    private final Backend backend;
    private final Map<String, Tensor> buffers = new HashMap<>();
    private final Map<String, Tensor> indexBuffers = new HashMap<>();

    public Scratch(Backend backend) {
        this.backend = backend;
    }

    /** A [rows, cols] buffer named {@code name}; its contents are whatever the last user left. */
    public Tensor get(String name, int rows, int cols) {
        return reused(buffers, name, rows, cols, backend::allocate);
    }

    /** As {@link #get}, for integer data a kernel writes ({@link Backend#allocateIndices}). */
    public Tensor indices(String name, int rows, int cols) {
        return reused(indexBuffers, name, rows, cols, backend::allocateIndices);
    }

    private static Tensor reused(Map<String, Tensor> buffers, String name, int rows, int cols,
                                 BiFunction<Integer, Integer, Tensor> allocate) {
        Tensor t = buffers.get(name);
        if (t == null || t.cols() != cols || t.rows() < rows) {
            int capacity = Math.max(rows, t == null ? 0 : Math.min(t.rows() * 2, Math.max(rows, 1 << 16)));
            t = allocate.apply(capacity, cols);
            buffers.put(name, t);
        }
        return t.rows(0, rows);
    }
}
