package dev.jvllm.cpu;

import dev.jvllm.spi.Tensor;
import dev.jvllm.weights.DType;

import java.lang.foreign.MemorySegment;
import java.util.function.Supplier;

/**
 * A CPU tensor: a row-major {@code rows × cols} matrix held in one of two ways.
 * <ul>
 *   <li>Float32 activations and constants live in a Java {@code float[]} from {@code offset}, so
 *       kernels read them with plain array vector loads;</li>
 *   <li>weights (and indices) live in a memory segment: a slice of the memory-mapped checkpoint
 *       in its file type (F32, BF16, F16), or int32 indices.</li>
 * </ul>
 * Keeping activations out of memory segments matters for speed: the JIT profiles segment kinds
 * per access site inside the JDK, and mixing heap, native and mapped segments there turns
 * vector loads into calls. Row views share storage.
 */
final class CpuTensor implements Tensor {

    private final DType dtype;
    private final int rows;
    private final int cols;
    private final String name;
    private final float[] floats;
    private final int offset;
    private final MemorySegment segment;
    /** This weight rearranged for the matrix-matrix kernel ({@link WeightPanels}), made on first use. */
    private volatile WeightPanels panels;

    private CpuTensor(DType dtype, int rows, int cols, String name, float[] floats, int offset, MemorySegment segment) {
        if (rows < 0 || cols < 0) {
            throw new IllegalArgumentException("negative shape " + rows + " × " + cols + " for " + name);
        }
        this.dtype = dtype;
        this.rows = rows;
        this.cols = cols;
        this.name = name;
        this.floats = floats;
        this.offset = offset;
        this.segment = segment;
    }

    /** Float32 values in {@code array[offset, offset + rows × cols)}. */
    static CpuTensor ofFloats(float[] array, int offset, int rows, int cols, String name) {
        if (offset < 0 || (long) offset + (long) rows * cols > array.length) {
            throw new IllegalArgumentException(name + ": " + rows + " × " + cols + " floats at " + offset
                    + " do not fit an array of " + array.length);
        }
        return new CpuTensor(DType.F32, rows, cols, name, array, offset, null);
    }

    /** Elements of {@code dtype} filling exactly the bytes of {@code data}. */
    static CpuTensor ofSegment(MemorySegment data, DType dtype, int rows, int cols, String name) {
        if (data.byteSize() != (long) rows * cols * dtype.byteSize()) {
            throw new IllegalArgumentException(name + ": " + data.byteSize() + " bytes do not hold "
                    + rows + " × " + cols + " " + dtype + " elements");
        }
        return new CpuTensor(dtype, rows, cols, name, null, 0, data);
    }

    @Override
    public DType dtype() {
        return dtype;
    }

    @Override
    public int rows() {
        return rows;
    }

    @Override
    public int cols() {
        return cols;
    }

    String name() {
        return name;
    }

    /** True when the values are in a float array ({@link #floats()}, {@link #offset()}). */
    boolean inArray() {
        return floats != null;
    }

    /** The array of an array-held tensor. */
    float[] floats() {
        return floats;
    }

    /** Where element 0 of an array-held tensor is. */
    int offset() {
        return offset;
    }

    /**
     * The elements as a memory segment: the stored one, or a view of the float array (for the
     * rare tensor made by value that a kernel reads as a weight).
     */
    MemorySegment segment() {
        if (segment != null) {
            return segment;
        }
        return MemorySegment.ofArray(floats).asSlice((long) offset * Float.BYTES, elementCount() * Float.BYTES);
    }

    /**
     * This weight's panels, packed by {@code pack} on the first call that gets some (it may
     * decline with null) and kept for the tensor's lifetime; views made by {@link #rows} have their own.
     */
    WeightPanels panels(Supplier<WeightPanels> pack) {
        WeightPanels made = panels;
        if (made == null) {
            synchronized (this) {
                made = panels;
                if (made == null) {
                    made = pack.get();
                    panels = made;
                }
            }
        }
        return made;
    }

    /** Element index of the first element of row {@code row} (relative to the storage start). */
    long rowStart(int row) {
        return (long) row * cols;
    }

    /** Array index of the first element of row {@code row} of an array-held tensor. */
    int arrayIndex(int row) {
        return offset + row * cols;
    }

    /** One element as float, wherever it is held (for per-row or per-token values, not inner loops). */
    float get(long index) {
        return floats != null ? floats[offset + (int) index] : Elements.get(dtype, segment, index);
    }

    /** One int32 index. */
    int index(int i) {
        return Elements.getInt(segment, i);
    }

    @Override
    public Tensor rows(int start, int count) {
        if (start < 0 || count < 0 || start + count > rows) {
            throw new IndexOutOfBoundsException("rows [" + start + ", " + (start + count) + ") of " + this);
        }
        if (floats != null) {
            return new CpuTensor(dtype, count, cols, name, floats, offset + start * cols, null);
        }
        long rowBytes = (long) cols * dtype.byteSize();
        return new CpuTensor(dtype, count, cols, name, null, 0, segment.asSlice(start * rowBytes, count * rowBytes));
    }

    @Override
    public Tensor reshape(int newRows, int newCols) {
        if (newRows < 0 || newCols < 0 || (long) newRows * newCols != (long) rows * cols) {
            throw new IllegalArgumentException("cannot reshape " + this + " to " + newRows + " × " + newCols);
        }
        return new CpuTensor(dtype, newRows, newCols, name, floats, offset, segment);
    }

    @Override
    public String toString() {
        return name + " " + dtype + "[" + rows + " × " + cols + "]";
    }
}
