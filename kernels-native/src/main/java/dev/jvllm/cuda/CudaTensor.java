package dev.jvllm.cuda;

import dev.jvllm.spi.Tensor;
import dev.jvllm.weights.DType;

/**
 * A tensor in device memory: a row-major {@code rows × cols} matrix of {@code dtype} elements
 * starting {@code offset} bytes into {@code buffer}. Row views and reshapes share the buffer.
 *
 * @param dtype F32, BF16 or F16 for floating data, I32 for indices
 * @param name  what the tensor is, for error messages
 */
record CudaTensor(DeviceBuffer buffer, long offset, DType dtype, int rows, int cols, String name) implements Tensor {

    CudaTensor {
        if (rows < 0 || cols < 0) {
            throw new IllegalArgumentException("negative shape " + rows + " × " + cols + " for " + name);
        }
        if (offset + byteSize(rows, cols, dtype) > Math.max(buffer.bytes(), 0)) {
            throw new IllegalArgumentException(name + ": " + rows + " × " + cols + " " + dtype + " at byte " + offset
                    + " does not fit its buffer of " + buffer.bytes() + " bytes");
        }
    }

    /** Element type codes shared with the kernels (common.cuh's JV_F32, JV_F16, JV_BF16). */
    static int typeCode(DType type) {
        return switch (type) {
            case F32 -> 0;
            case F16 -> 1;
            case BF16 -> 2;
            default -> throw new IllegalArgumentException("no kernel element type for " + type);
        };
    }

    int typeCode() {
        return typeCode(dtype);
    }

    /** The device pointer to the first element. */
    long address() {
        return buffer.address() + offset;
    }

    long byteSize() {
        return byteSize(rows, cols, dtype);
    }

    private static long byteSize(int rows, int cols, DType dtype) {
        return (long) rows * cols * dtype.byteSize();
    }

    boolean overlaps(CudaTensor other) {
        return address() < other.address() + other.byteSize() && other.address() < address() + byteSize();
    }

    @Override
    public Tensor rows(int start, int count) {
        if (start < 0 || count < 0 || start + count > rows) {
            throw new IndexOutOfBoundsException("rows [" + start + ", " + (start + count) + ") of " + this);
        }
        return new CudaTensor(buffer, offset + byteSize(start, cols, dtype), dtype, count, cols, name);
    }

    @Override
    public Tensor reshape(int newRows, int newCols) {
        if ((long) newRows * newCols != (long) rows * cols) {
            throw new IllegalArgumentException("cannot reshape " + this + " to " + newRows + " × " + newCols);
        }
        return new CudaTensor(buffer, offset, dtype, newRows, newCols, name);
    }

    @Override
    public String toString() {
        return name + " " + dtype + "[" + rows + " × " + cols + "] on the GPU";
    }
}
