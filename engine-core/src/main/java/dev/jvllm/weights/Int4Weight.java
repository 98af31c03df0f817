package dev.jvllm.weights;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.file.Path;

/**
 * A [rows (outputs), cols (inputs)] weight of 4-bit integers laid out as tensor cores take it, the
 * same for GPTQ and AWQ. Each element is {@code (q - zero) × scale} of its group ({@code groupSize}
 * consecutive packed inputs of a row). The words come in tiles of 16 rows × 64 packed inputs, the
 * tiles of a row tile one after another: 512 bytes a tile, 16 a lane of a warp. Lane L = 4g + t
 * holds in word j four pairs, pair p in bits 4p (the pair's first input) and 4p + 16 (its second):
 * rows g, g + 8, g, g + 8 of the tile for p = 0..3, at inputs 16t + 4j (p = 0, 1) or 16t + 4j + 2
 * (p = 2, 3) and the input after. That is an mma.sync m16n8k16 A fragment of k-step j, the k-steps
 * taking the tile's inputs in that order (A and B alike, so the sums are the same): a lane turns one
 * word into a k-step's four registers, and its B fragments of the tile's four k-steps are 16
 * consecutive inputs, inputs 16t .. 16t + 15.
 *
 * @param scales     [rows × groups], row-major
 * @param zeros      [rows × groups], each the zero level of its group
 * @param inputOrder null where packed input i is the checkpoint's input i; else [cols], the
 *                   checkpoint's input at packed position i (GPTQ's act-order sorts the inputs by
 *                   group, so that each group is one run)
 */
public record Int4Weight(String name, int rows, int cols, int groupSize, MemorySegment words, float[] scales,
                         float[] zeros, int[] inputOrder, Path file, Arena arena) implements AutoCloseable {

    /** Rows and packed inputs of a tile. */
    public static final int TILE_ROWS = 16, TILE_INPUTS = 64;
    private static final ValueLayout.OfInt WORD = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    public Int4Weight {
        if (!fits(rows, cols, groupSize)) {
            throw new IllegalArgumentException(name + ": " + rows + " × " + cols + " in groups of " + groupSize
                    + " is not whole tiles of " + TILE_ROWS + " × " + TILE_INPUTS);
        }
        if (words.byteSize() != (long) rows * cols / 2 || scales.length != (long) rows * (cols / groupSize)
                || zeros.length != scales.length || (inputOrder != null && inputOrder.length != cols)) {
            throw new IllegalArgumentException(name + ": packed parts do not fit " + rows + " × " + cols);
        }
    }

    /** Whether a weight of this shape and grouping makes whole tiles, each within one group. */
    public static boolean fits(int rows, int cols, int groupSize) {
        return rows % TILE_ROWS == 0 && cols % TILE_INPUTS == 0 && groupSize % TILE_INPUTS == 0 && cols % groupSize == 0;
    }

    /** Groups a row. */
    public int groupsPerRow() {
        return cols / groupSize;
    }

    /** The element at (row, the checkpoint's input {@code input}), as a float: for tests and checks. */
    public float value(int row, int input) {
        int packed = inputOrder == null ? input : positionOf(input);
        int word = words.getAtIndex(WORD, wordIndex(cols, row, packed));
        int q = (word >>> bitOf(row, packed)) & 0xf;
        int group = row * groupsPerRow() + packed / groupSize;
        return (q - zeros[group]) * scales[group];
    }

    private int positionOf(int input) {
        for (int i = 0; i < cols; i++) {
            if (inputOrder[i] == input) return i;
        }
        throw new IndexOutOfBoundsException("input " + input + " of " + name);
    }

    /** The index of the word that holds (row, packed input) in a weight of {@code cols} inputs. */
    public static long wordIndex(int cols, int row, int packed) {
        int inTile = packed % TILE_INPUTS, lane = 4 * (row % 8) + inTile / 16;
        long tile = (long) (row / TILE_ROWS) * (cols / TILE_INPUTS) + packed / TILE_INPUTS;
        return (tile * 32 + lane) * 4 + inTile % 16 / 4;
    }

    /** The lowest bit of (row, packed input)'s nibble in its word. */
    public static int bitOf(int row, int packed) {
        int ofFour = packed % 4, pair = (row % TILE_ROWS) / 8 + 2 * (ofFour / 2);
        return 4 * pair + 16 * (ofFour % 2);
    }

    /**
     * The words of whole row tiles of a weight of {@code cols} inputs, from their levels (0..15) in
     * packed input order, {@code levels[r][packed]} for the block's row r: as many words as the
     * block's rows × cols / 8, the run that starts at the block's first row's word (the inverse of
     * {@link #wordIndex} and {@link #bitOf}).
     */
    public static int[] packRows(int cols, byte[][] levels) {
        if (levels.length % TILE_ROWS != 0 || cols % TILE_INPUTS != 0) {
            throw new IllegalArgumentException(levels.length + " rows × " + cols + " inputs are not whole tiles");
        }
        for (byte[] row : levels) {
            if (row.length != cols) throw new IllegalArgumentException("a row of " + row.length + " levels, not " + cols);
        }
        int[] words = new int[levels.length * (cols / 8)];
        int at = 0;
        for (int rowTile = 0; rowTile < levels.length; rowTile += TILE_ROWS) {
            for (int tile = 0; tile < cols; tile += TILE_INPUTS) {
                for (int lane = 0; lane < 32; lane++) {
                    byte[] upper = levels[rowTile + lane / 4], lower = levels[rowTile + lane / 4 + 8];
                    for (int step = 0, i = tile + 16 * (lane % 4); step < 4; step++, i += 4) {
                        // pairs 0 and 1 at inputs i and i + 1, pairs 2 and 3 at i + 2 and i + 3 (bitOf)
                        words[at++] = upper[i] | lower[i] << 4 | upper[i + 2] << 8 | lower[i + 2] << 12
                                | upper[i + 1] << 16 | lower[i + 1] << 20 | upper[i + 3] << 24 | lower[i + 3] << 28;
                    }
                }
            }
        }
        return words;
    }

    /** Frees the words' memory. */
    @Override
    public void close() {
        arena.close();
    }
}
