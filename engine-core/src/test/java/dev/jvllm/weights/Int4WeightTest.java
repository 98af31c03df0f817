package dev.jvllm.weights;

import org.junit.jupiter.api.Test;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

class Int4WeightTest {

    /** The kernels read each (row, input) where wordIndex and bitOf say: packRows must put it there. */
    @Test
    void packedRowsHoldEachLevelWhereTheLayoutSays() {
        int rows = 32, cols = 192;
        Random random = new Random(3);
        byte[][] levels = new byte[rows][cols];
        for (byte[] row : levels) {
            for (int i = 0; i < cols; i++) row[i] = (byte) random.nextInt(16);
        }
        int[] words = Int4Weight.packRows(cols, levels);
        assertEquals(rows * cols / 8, words.length);
        for (int r = 0; r < rows; r++) {
            for (int i = 0; i < cols; i++) {
                int word = words[Math.toIntExact(Int4Weight.wordIndex(cols, r, i))];
                assertEquals(levels[r][i], (word >>> Int4Weight.bitOf(r, i)) & 0xf, "row " + r + ", input " + i);
            }
        }
    }

    @Test
    void rowsThatAreNotWholeTilesOrNotColsLongAreRefused() {
        assertThrows(IllegalArgumentException.class, () -> Int4Weight.packRows(64, new byte[8][64]));
        assertThrows(IllegalArgumentException.class, () -> Int4Weight.packRows(96, new byte[16][96]));
        assertThrows(IllegalArgumentException.class, () -> Int4Weight.packRows(64, new byte[16][128]));
    }
}
