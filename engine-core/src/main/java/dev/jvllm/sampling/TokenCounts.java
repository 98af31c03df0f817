package dev.jvllm.sampling;

import java.util.Arrays;

/**
 * How many times each token id occurs, kept as tokens arrive so that penalties cost the number of
 * distinct tokens per step instead of a rescan of the sequence. An open-addressing hash table over
 * primitive arrays; the distinct tokens are also kept densely, in first-seen order, for iteration.
 */
final class TokenCounts {

    private static final int EMPTY = 0;

    private int[] tokens = new int[16];
    private int[] counts = new int[16];
    private int size;
    /** Hash slots holding 1 + an index into {@code tokens}, or {@link #EMPTY}. */
    private int[] slots = new int[32];

    /** Adds one occurrence of {@code tokenId} and returns its new count. */
    int increment(int tokenId) {
        int slot = slotOf(tokenId);
        if (slots[slot] != EMPTY) {
            return ++counts[slots[slot] - 1];
        }
        if (size == tokens.length) {
            tokens = Arrays.copyOf(tokens, size * 2);
            counts = Arrays.copyOf(counts, size * 2);
        }
        tokens[size] = tokenId;
        counts[size] = 1;
        slots[slot] = ++size;
        if (size * 2 > slots.length) {
            rehash(slots.length * 2);
        }
        return 1;
    }

    /** Occurrences of {@code tokenId} so far; 0 if never seen. */
    int count(int tokenId) {
        int entry = slots[slotOf(tokenId)];
        return entry == EMPTY ? 0 : counts[entry - 1];
    }

    /** Distinct tokens seen. */
    int size() {
        return size;
    }

    /** The {@code i}-th distinct token, in first-seen order. */
    int tokenAt(int i) {
        return tokens[i];
    }

    /** Occurrences of {@link #tokenAt(int) tokenAt(i)}. */
    int countAt(int i) {
        return counts[i];
    }

    private int slotOf(int tokenId) {
        int mask = slots.length - 1;
        int slot = mix(tokenId) & mask;
        while (slots[slot] != EMPTY && tokens[slots[slot] - 1] != tokenId) {
            slot = (slot + 1) & mask;
        }
        return slot;
    }

    private void rehash(int capacity) {
        slots = new int[capacity];
        int mask = capacity - 1;
        for (int i = 0; i < size; i++) {
            int slot = mix(tokens[i]) & mask;
            while (slots[slot] != EMPTY) {
                slot = (slot + 1) & mask;
            }
            slots[slot] = i + 1;
        }
    }

    /** Fibonacci hashing, so that runs of neighbouring ids spread over the table. */
    private static int mix(int tokenId) {
        int h = tokenId * 0x9E3779B9;
        return h ^ (h >>> 16);
    }
}
