package dev.jvllm.weights;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.file.Path;

/**
 * A [rows (outputs), cols (inputs)] weight of 4-bit integers as a kernel reads it, the same for GPTQ
 * and AWQ: row r's inputs in {@code cols / 8} little-endian 32-bit words, input 8w + j of the row in
 * bits 4j of its word w (the packed input order, see {@code inputOrder}); each run of {@code groupSize}
 * packed inputs of a row one group, whose element is {@code q × scale + offset} ({@code offset} is
 * {@code -zero × scale}). The memory of {@code words} is this weight's until {@link #close}.
 *
 * @param inputOrder null where packed input i is the checkpoint's input i; else [cols], the
 *                   checkpoint's input at packed position i (GPTQ's act-order sorts the inputs by
 *                   group, so that each group is one run)
 */
public record Int4Weight(String name, int rows, int cols, int groupSize, MemorySegment words, float[] scales,
                         float[] offsets, int[] inputOrder, Path file, Arena arena) implements AutoCloseable {

    private static final ValueLayout.OfInt WORD = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    public Int4Weight {
        if (cols % 8 != 0 || groupSize % 8 != 0 || cols % groupSize != 0) {
            throw new IllegalArgumentException(name + ": " + cols + " inputs in groups of " + groupSize + " are not whole words");
        }
        if (words.byteSize() != (long) rows * cols / 2 || scales.length != groups(rows, cols, groupSize)
                || offsets.length != scales.length || (inputOrder != null && inputOrder.length != cols)) {
            throw new IllegalArgumentException(name + ": packed parts do not fit " + rows + " × " + cols);
        }
    }

    private static long groups(int rows, int cols, int groupSize) {
        return (long) rows * (cols / groupSize);
    }

    /** Groups a row. */
    public int groupsPerRow() {
        return cols / groupSize;
    }

    /** The element at (row, the checkpoint's input {@code input}), as a float: for tests and host fallbacks. */
    public float value(int row, int input) {
        int packed = inputOrder == null ? input : positionOf(input);
        int word = words.getAtIndex(WORD, (long) row * (cols / 8) + packed / 8);
        int q = (word >>> (4 * (packed % 8))) & 0xf;
        int group = row * groupsPerRow() + packed / groupSize;
        return q * scales[group] + offsets[group];
    }

    private int positionOf(int input) {
        for (int i = 0; i < cols; i++) {
            if (inputOrder[i] == input) return i;
        }
        throw new IndexOutOfBoundsException("input " + input + " of " + name);
    }

    /** The packed weight's bytes on a device: words, scales and offsets as float32, and the order. */
    public long deviceBytes() {
        return words.byteSize() + 8L * scales.length + (inputOrder == null ? 0 : 4L * cols);
    }

    /** Frees the words' memory. */
    @Override
    public void close() {
        arena.close();
    }
}
