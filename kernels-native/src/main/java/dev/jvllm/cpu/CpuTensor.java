package dev.jvllm.cpu;

import dev.jvllm.spi.Tensor;
import dev.jvllm.weights.DType;

import java.lang.foreign.MemorySegment;
import java.util.Objects;

/**
 * A CPU tensor: a row-major {@code rows × cols} matrix stored in exactly the bytes of
 * {@code data}. Activations are float32 on the Java heap; weights are slices of the
 * memory-mapped checkpoint, kept in their file type. Row views slice the same storage.
 *
 * @param data  the elements, little-endian, {@code rows × cols × dtype.byteSize()} bytes
 * @param dtype F32, BF16 or F16 for floating data, I32 for indices
 * @param name  what the tensor is, for error messages (a checkpoint name, or "activation")
 */
record CpuTensor(MemorySegment data, DType dtype, int rows, int cols, String name) implements Tensor {

    CpuTensor {
        Objects.requireNonNull(data, "data");
        if (rows < 0 || cols < 0) {
            throw new IllegalArgumentException("negative shape " + rows + " × " + cols + " for " + name);
        }
        if (data.byteSize() != (long) rows * cols * dtype.byteSize()) {
            throw new IllegalArgumentException(name + ": " + data.byteSize() + " bytes do not hold "
                    + rows + " × " + cols + " " + dtype + " elements");
        }
    }

    @Override
    public Tensor rows(int start, int count) {
        if (start < 0 || count < 0 || start + count > rows) {
            throw new IndexOutOfBoundsException("rows [" + start + ", " + (start + count) + ") of " + this);
        }
        long rowBytes = (long) cols * dtype.byteSize();
        return new CpuTensor(data.asSlice(start * rowBytes, count * rowBytes), dtype, count, cols, name);
    }

    @Override
    public Tensor reshape(int newRows, int newCols) {
        if ((long) newRows * newCols != (long) rows * cols) {
            throw new IllegalArgumentException("cannot reshape " + this + " to " + newRows + " × " + newCols);
        }
        return new CpuTensor(data, dtype, newRows, newCols, name);
    }

    /** Element index of the first element of row {@code row}. */
    long rowStart(int row) {
        return (long) row * cols;
    }

    @Override
    public String toString() {
        return name + " " + dtype + "[" + rows + " × " + cols + "]";
    }
}
