package dev.jvllm.spi;

import dev.jvllm.weights.DType;

/**
 * A matrix owned by a {@link Backend}: {@code rows × cols} elements, row-major. Activations are
 * [tokens, features]; weights are [out, in] (a vector is one row). Model code never reads the
 * elements; only the backend that made a tensor may use it.
 */
public interface Tensor {

    DType dtype();

    int rows();

    int cols();

    /** A view of rows {@code [start, start + count)}, sharing storage. */
    Tensor rows(int start, int count);

    /** The same storage seen as {@code rows × cols} (the element count must match). */
    Tensor reshape(int rows, int cols);

    default long elementCount() {
        return (long) rows() * cols();
    }
}
