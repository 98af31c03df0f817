package dev.jvllm.engine;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;

class BlockTableTest {

    private static BlockTable of(int... blocks) {
        BlockTable table = new BlockTable();
        for (int block : blocks) table.add(block);
        return table;
    }

    @Test
    void arrayIsHandedOutAgainUntilTheTableChanges() {
        BlockTable table = of(4, 9);
        int[] first = table.toArray();
        assertSame(first, table.toArray());
        table.add(3);
        int[] second = table.toArray();
        assertNotSame(first, second);
        assertArrayEquals(new int[]{4, 9}, first, "an array once handed out is never written");
        assertArrayEquals(new int[]{4, 9, 3}, second);
    }

    @Test
    void tableRefilledToTheSameLengthAfterClearingHandsOutItsNewBlocks() {
        // A preempted sequence is freed and later admitted again on other blocks.
        BlockTable table = of(1, 2);
        int[] before = table.toArray();
        table.clear();
        assertArrayEquals(new int[0], table.toArray());
        table.add(7);
        table.add(8);
        assertArrayEquals(new int[]{7, 8}, table.toArray());
        assertArrayEquals(new int[]{1, 2}, before);
    }

    @Test
    void growsPastItsFirstCapacity() {
        BlockTable table = new BlockTable();
        int[] expected = new int[100];
        for (int i = 0; i < 100; i++) {
            table.add(1000 + i);
            expected[i] = 1000 + i;
        }
        assertArrayEquals(expected, table.toArray());
        assertArrayEquals(new int[]{1000, 1001, 1002}, table.prefix(3));
    }

    @Test
    void readingPastTheEndFails() {
        BlockTable table = of(5);
        table.clear();
        assertThrows(IndexOutOfBoundsException.class, () -> table.get(0), "a cleared table's old block is not readable");
        assertThrows(IndexOutOfBoundsException.class, () -> table.prefix(1));
    }
}
