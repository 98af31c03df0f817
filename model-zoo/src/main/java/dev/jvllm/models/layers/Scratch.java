package dev.jvllm.models.layers;

import dev.jvllm.spi.Backend;
import dev.jvllm.spi.Tensor;

import java.util.HashMap;
import java.util.Map;

/**
 * The activation buffers of a forward pass, kept between passes and grown when a batch has more
 * tokens than any before, so steady-state decoding allocates nothing.
 */
public final class Scratch {

    private final Backend backend;
    private final Map<String, Tensor> buffers = new HashMap<>();

    public Scratch(Backend backend) {
        this.backend = backend;
    }

    /** A [rows, cols] buffer named {@code name}; its contents are whatever the last user left. */
    public Tensor get(String name, int rows, int cols) {
        Tensor t = buffers.get(name);
        if (t == null || t.cols() != cols || t.rows() < rows) {
            int capacity = Math.max(rows, t == null ? 0 : Math.min(t.rows() * 2, Math.max(rows, 1 << 16)));
            t = backend.allocate(capacity, cols);
            buffers.put(name, t);
        }
        return t.rows(0, rows);
    }
}
