package dev.jvllm.cpu;

import dev.jvllm.spi.Tensor;
import dev.jvllm.weights.DType;
import dev.jvllm.weights.Int4Weight;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * A 4-bit weight as the CPU's loops read it ({@link InnerLoops#int4Dot}): each row's inputs (in the
 * packed order of {@link Int4Weight}, act-order's sorted one included) in blocks of {@code 2·half},
 * byte j of a block holding input j in its low nibble and input {@code half + j} in its high one, so
 * that a block's bytes widen to two float vectors; a scale and zero a (row, group). Row views share
 * the bytes.
 */
final class Int4CpuWeight implements Tensor {

    private static final ValueLayout.OfInt WORD = ValueLayout.JAVA_INT_UNALIGNED.withOrder(java.nio.ByteOrder.LITTLE_ENDIAN);

    final MemorySegment bytes;
    final float[] scales;
    final float[] zeros;
    /** Null, or the checkpoint's input at each packed position. */
    final int[] order;
    final int groupSize;
    final int half;
    private final int firstRow;
    private final int rows;
    private final int cols;
    private final String name;

    private Int4CpuWeight(MemorySegment bytes, float[] scales, float[] zeros, int[] order, int groupSize, int half, int firstRow,
                          int rows, int cols, String name) {
        this.bytes = bytes;
        this.scales = scales;
        this.zeros = zeros;
        this.order = order;
        this.groupSize = groupSize;
        this.half = half;
        this.firstRow = firstRow;
        this.rows = rows;
        this.cols = cols;
        this.name = name;
    }

    /** {@code source} relaid for blocks of {@code 2·half} inputs, a task a tile of 16 rows. */
    static Int4CpuWeight of(Int4Weight source, int half, WorkerPool pool) {
        int rows = source.rows(), cols = source.cols();
        if (cols % (2 * half) != 0 || source.groupSize() % (2 * half) != 0) {
            throw new IllegalArgumentException(source.name() + ": " + cols + " inputs in groups of " + source.groupSize()
                    + " are not whole blocks of " + 2 * half);
        }
        MemorySegment bytes = Arena.ofAuto().allocate((long) rows * cols / 2, 16);
        int tileWords = cols * Int4Weight.TILE_ROWS / 8;
        pool.forEach(rows / Int4Weight.TILE_ROWS, 1, (first, end, worker) -> {
            int[] words = new int[tileWords];
            byte[] out = new byte[tileWords * 4];
            for (int tile = first; tile < end; tile++) {
                MemorySegment.copy(source.words(), WORD, (long) tile * tileWords * 4, words, 0, tileWords);
                java.util.Arrays.fill(out, (byte) 0);
                for (int w = 0; w < tileWords; w++) {
                    long index = (long) tile * tileWords + w;
                    int step = (int) (index % 4), lane = (int) (index / 4 % 32);
                    int row0 = lane / 4, input0 = (int) (index / 128 % (cols / Int4Weight.TILE_INPUTS)) * Int4Weight.TILE_INPUTS
                            + 16 * step + 2 * (lane % 4);
                    for (int pair = 0; pair < 4; pair++) {
                        int row = row0 + 8 * (pair % 2), input = input0 + 8 * (pair / 2);
                        place(out, row, input, (words[w] >>> (4 * pair)) & 0xf, cols, half);
                        place(out, row, input + 1, (words[w] >>> (4 * pair + 16)) & 0xf, cols, half);
                    }
                }
                MemorySegment.copy(out, 0, bytes, ValueLayout.JAVA_BYTE, (long) tile * out.length, out.length);
            }
        });
        return new Int4CpuWeight(bytes, source.scales().clone(), source.zeros().clone(),
                source.inputOrder() == null ? null : source.inputOrder().clone(), source.groupSize(), half, 0, rows, cols, source.name());
    }

    /** Level q of (row within the tile, packed input) into the tile's bytes. */
    private static void place(byte[] tile, int row, int input, int q, int cols, int half) {
        int block = input / (2 * half), j = input % (2 * half);
        int at = row * (cols / 2) + block * half + j % half;
        tile[at] |= (byte) (j < half ? q : q << 4);
    }

    /** The byte where row {@code row}'s inputs start. */
    long rowByte(int row) {
        return (long) (firstRow + row) * cols / 2;
    }

    int groups() {
        return cols / groupSize;
    }

    /** Index of (row, group) in {@link #scales} and {@link #zeros}. */
    int group(int row, int group) {
        return (firstRow + row) * groups() + group;
    }

    /** Row {@code row}'s elements in the checkpoint's input order, into {@code out} from {@code at}. */
    void decodeRow(int row, float[] out, int at) {
        for (int i = 0; i < cols; i++) {
            int block = i / (2 * half), j = i % (2 * half);
            int b = bytes.get(ValueLayout.JAVA_BYTE, rowByte(row) + (long) block * half + j % half);
            int q = j < half ? b & 0xf : (b >>> 4) & 0xf;
            int g = group(row, i / groupSize);
            out[at + (order == null ? i : order[i])] = (q - zeros[g]) * scales[g];
        }
    }

    @Override
    public DType dtype() {
        return DType.F32;
    }

    @Override
    public int rows() {
        return rows;
    }

    @Override
    public int cols() {
        return cols;
    }

    @Override
    public Tensor rows(int start, int count) {
        if (start < 0 || count < 0 || start + count > rows) {
            throw new IndexOutOfBoundsException("rows [" + start + ", " + (start + count) + ") of " + this);
        }
        return new Int4CpuWeight(bytes, scales, zeros, order, groupSize, half, firstRow + start, count, cols, name);
    }

    @Override
    public Tensor reshape(int newRows, int newCols) {
        if (newRows == rows && newCols == cols) return this;
        throw new IllegalArgumentException("a 4-bit weight cannot be reshaped: " + this + " to " + newRows + " × " + newCols);
    }

    @Override
    public String toString() {
        return name + " int4[" + rows + " × " + cols + ", groups of " + groupSize + "] on the CPU";
    }
}
