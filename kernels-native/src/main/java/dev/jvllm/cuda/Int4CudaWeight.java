package dev.jvllm.cuda;

import dev.jvllm.spi.Tensor;
import dev.jvllm.weights.DType;
import dev.jvllm.weights.Int4Weight;

/**
 * A 4-bit weight in device memory as quantized.cu reads it ({@link dev.jvllm.weights.Int4Weight}'s
 * layout): a [rows, cols] matrix of the activation type ({@code dtype}) to the models, stored as
 * {@code words} (I32 [rows / 16, 2 × cols]: a row of it is a row tile's tiles), {@code params} (F32
 * [rows / 16, groups × 16 × 2]: a row tile's (scale, zero) of its 16 rows group after group, so that a
 * group's are 128 contiguous bytes, {@link #paramsIndex}) and {@code order} (I32 [1, cols], or null
 * where the inputs are in the checkpoint's order). Row views of whole row tiles share the buffers.
 */
record Int4CudaWeight(CudaTensor words, CudaTensor params, CudaTensor order, int groupSize, DType dtype, String name)
        implements Tensor {

    @Override
    public int rows() {
        return words.rows() * Int4Weight.TILE_ROWS;
    }

    @Override
    public int cols() {
        return words.cols() / 2;
    }

    @Override
    public Tensor rows(int start, int count) {
        if (start % Int4Weight.TILE_ROWS != 0 || count % Int4Weight.TILE_ROWS != 0) {
            throw new IllegalArgumentException("rows [" + start + ", " + (start + count) + ") of the 4-bit weight " + this
                    + " are not whole tiles of " + Int4Weight.TILE_ROWS + " rows");
        }
        return new Int4CudaWeight((CudaTensor) words.rows(start / Int4Weight.TILE_ROWS, count / Int4Weight.TILE_ROWS),
                (CudaTensor) params.rows(start / Int4Weight.TILE_ROWS, count / Int4Weight.TILE_ROWS), order, groupSize, dtype, name);
    }

    /** Where row {@code row}'s scale of group {@code group} is in params (its zero follows). */
    static int paramsIndex(int row, int group, int groups) {
        return Math.toIntExact((((long) row / Int4Weight.TILE_ROWS * groups + group) * Int4Weight.TILE_ROWS + row % Int4Weight.TILE_ROWS) * 2);
    }

    @Override
    public Tensor reshape(int rows, int cols) {
        if (rows == rows() && cols == cols()) return this;
        throw new IllegalArgumentException("a 4-bit weight cannot be reshaped: " + this + " to " + rows + " × " + cols);
    }

    /** Whether this weight's rows come right after {@code before}'s in one stacked weight. */
    boolean follows(Int4CudaWeight before) {
        return words.buffer() == before.words.buffer() && words.offset() == before.words.offset() + before.words.byteSize()
                && order == before.order && groupSize == before.groupSize && cols() == before.cols();
    }

    @Override
    public String toString() {
        return name + " int4[" + rows() + " × " + cols() + ", groups of " + groupSize + "] on the GPU";
    }
}
