package dev.jvllm.engine;

import java.util.Arrays;

/**
 * The KV-cache blocks of one sequence, in the order of its tokens: block {@code i} holds tokens
 * {@code [i × blockSize, (i + 1) × blockSize)}. Kept as ints and grown one block at a time, so a
 * step neither boxes nor rebuilds it; the array a forward batch takes is copied only when the
 * table has changed since the last one (once every blockSize decode steps).
 */
final class BlockTable {

    private static final int[] NONE = new int[0];

    private int[] blocks = new int[8];
    private int size;
    /** The last {@link #toArray()}, null once the table has changed. */
    private int[] handedOut = NONE;

    int size() {
        return size;
    }

    int get(int index) {
        if (index >= size) throw new IndexOutOfBoundsException("block " + index + " of a table of " + size);
        return blocks[index];
    }

    void add(int block) {
        if (size == blocks.length) blocks = Arrays.copyOf(blocks, 2 * size);
        blocks[size++] = block;
        handedOut = null;
    }

    /** Drops the blocks from {@code count} on (the caller releases them); returns the blocks dropped. */
    int[] truncate(int count) {
        if (count >= size) return NONE;
        int[] dropped = Arrays.copyOfRange(blocks, count, size);
        size = count;
        handedOut = null;
        return dropped;
    }

    void clear() {
        size = 0;
        handedOut = NONE;
    }

    /** The first {@code count} blocks, as a new array. */
    int[] prefix(int count) {
        if (count > size) throw new IndexOutOfBoundsException(count + " blocks of a table of " + size);
        return Arrays.copyOf(blocks, count);
    }

    /**
     * The blocks as an array of exactly {@link #size()} entries, which nothing writes afterwards:
     * the same array until the table changes, so it may be given to several forward batches.
     */
    int[] toArray() {
        if (handedOut == null) handedOut = Arrays.copyOf(blocks, size);
        return handedOut;
    }

    @Override
    public String toString() {
        return Arrays.toString(Arrays.copyOf(blocks, size));
    }
}
