package dev.jvllm.models.layers;

import dev.jvllm.spi.Backend;
import dev.jvllm.spi.BackendOptions;
import dev.jvllm.spi.Backends;
import dev.jvllm.spi.Tensor;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.Map;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Rows kept between steps (images' features, cross-attention keys and values): each entry its own rows, within one budget, least recently used dropped first. */
class KeptRowsTest {

    private static final int COLS = 4;
    private final Backend cpu = Backends.create("cpu", new BackendOptions(1));

    @AfterEach
    void close() {
        cpu.close();
    }

    /** Writes {@code value} into every element of the image's rows, as an encode would write its features. */
    private void write(Tensor rows, float value) {
        float[] values = new float[rows.rows() * COLS];
        Arrays.fill(values, value);
        cpu.scale(cpu.constant(values, rows.rows(), COLS), 1f, rows);
    }

    /** Places an entry of {@code rows} rows (those of {@code inUse} kept) and writes {@code value} into its first plane. */
    private void keep(KeptRows cache, String hash, int rows, Set<String> inUse, float value) {
        cache.put(hash, rows, inUse);
        write(cache.get(hash), value);
    }

    private void assertHolds(KeptRows cache, String hash, int rows, float value) {
        float[] expected = new float[rows * COLS];
        Arrays.fill(expected, value);
        assertArrayEquals(expected, cpu.toFloatArray(cache.get(hash, 0)), hash);
    }

    @Test
    void manySmallImagesShareTheBudgetInsteadOfABufferOfTheLargestSizeEach() {
        KeptRows cache = new KeptRows(cpu, "test rows", 1000, COLS);
        for (int i = 0; i < 40; i++) {
            keep(cache, "small" + i, 4, Set.of(), i);
        }
        assertEquals(1000, cache.capacity(), "forty images of four rows fit the budget's one buffer");
        for (int i = 0; i < 40; i++) assertHolds(cache, "small" + i, 4, i);
    }

    @Test
    void theLeastRecentlyUsedImageNotInUseMakesRoom() {
        KeptRows cache = new KeptRows(cpu, "test rows", 100, COLS);
        keep(cache, "a", 40, Set.of(), 1);
        keep(cache, "b", 40, Set.of(), 2);
        cache.get("a");  // now b is the least recently used
        keep(cache, "c", 40, Set.of("a", "c"), 3);
        assertFalse(cache.holds("b"));
        assertHolds(cache, "a", 40, 1);
        assertHolds(cache, "c", 40, 3);
        assertEquals(100, cache.capacity());
    }

    @Test
    void imagesTheStepUsesAreKeptEvenWhenOlder() {
        KeptRows cache = new KeptRows(cpu, "test rows", 100, COLS);
        keep(cache, "old", 50, Set.of(), 1);
        keep(cache, "newer", 30, Set.of(), 2);
        keep(cache, "third", 40, Set.of("old", "third"), 3);
        assertTrue(cache.holds("old"));
        assertFalse(cache.holds("newer"));
        assertHolds(cache, "old", 50, 1);
        assertHolds(cache, "third", 40, 3);
    }

    @Test
    void aGapLeftByADroppedImageIsReusedBeforeAnyOtherIsDropped() {
        KeptRows cache = new KeptRows(cpu, "test rows", 100, COLS);
        keep(cache, "a", 30, Set.of(), 1);
        keep(cache, "b", 30, Set.of(), 2);
        keep(cache, "c", 30, Set.of(), 3);
        keep(cache, "d", 30, Set.of("b", "c", "d"), 4);  // drops a: d takes its rows
        keep(cache, "e", 10, Set.of("b", "c", "d", "e"), 5);  // the ten rows at the end
        assertTrue(cache.holds("b") && cache.holds("c") && cache.holds("d") && cache.holds("e"));
        for (String hash : new String[]{"b", "c", "d", "e"}) {
            assertHolds(cache, hash, hash.equals("e") ? 10 : 30, hash.charAt(0) - 'a' + 1);
        }
        assertEquals(100, cache.capacity());
    }

    @Test
    void aStepWhoseImagesExceedTheBudgetGetsMoreRowsAndKeepsThemAll() {
        KeptRows cache = new KeptRows(cpu, "test rows", 100, COLS);
        keep(cache, "a", 80, Set.of(), 1);
        keep(cache, "b", 80, Set.of("a", "b"), 2);
        assertTrue(cache.capacity() > 100);
        assertHolds(cache, "a", 80, 1);
        assertHolds(cache, "b", 80, 2);
    }

    @Test
    void anEntrySitsAtTheSameRowsInEveryPlaneAndGrowthKeepsThem() {
        KeptRows cache = new KeptRows(cpu, "test rows", 50, COLS, COLS);
        keep(cache, "a", 30, Set.of(), 1);
        write(cache.get("a", 1), -1);
        keep(cache, "b", 40, Set.of("a", "b"), 2);  // does not fit beside a: the planes grow
        write(cache.get("b", 1), -2);
        assertEquals(100, cache.capacity());
        assertEquals(cache.firstRow("a") + 30, cache.firstRow("b"));
        assertHolds(cache, "a", 30, 1);
        float[] second = cpu.toFloatArray(cache.plane(1).rows(cache.firstRow("a"), 30));
        for (float value : second) assertEquals(-1f, value);
        float[] secondOfB = cpu.toFloatArray(cache.get("b", 1));
        for (float value : secondOfB) assertEquals(-2f, value);
    }

    /**
     * Entries placed together and written after the last placement, as a step's new inputs are: the
     * rows of each, fetched after the planes grew for a later one, hold what was written.
     */
    @Test
    void keepAllWritesEachNewEntryAfterThePlanesGrewForALaterOne() {
        KeptRows cache = new KeptRows(cpu, "test rows", 50, COLS);
        Map<String, Integer> rows = new java.util.LinkedHashMap<>();
        rows.put("a", 30);
        rows.put("b", 40);
        assertEquals(java.util.List.of("a", "b"), cache.keepAll(rows, missing -> {
            for (String key : missing) write(cache.get(key), key.equals("a") ? 1 : 2);
        }));
        assertHolds(cache, "a", 30, 1);
        assertHolds(cache, "b", 40, 2);
    }

    @Test
    void aFillThatFailsKeepsNoneOfTheNewEntries() {
        KeptRows cache = new KeptRows(cpu, "test rows", 100, COLS);
        keep(cache, "kept", 10, Set.of(), 7);
        Map<String, Integer> rows = Map.of("kept", 10, "new", 20);
        assertThrows(IllegalStateException.class, () -> cache.keepAll(rows, missing -> {
            throw new IllegalStateException("the encoder failed");
        }));
        assertFalse(cache.holds("new"));
        assertHolds(cache, "kept", 10, 7);
    }

    /**
     * Entries in use that fit together but leave no gap large enough (a 4, a dropped 2, a 3 in 10 rows;
     * then a 3) move down to make one, rather than growing the planes; their rows keep what was written.
     */
    @Test
    void scatteredGapsAreJoinedBeforeThePlanesGrow() {
        KeptRows cache = new KeptRows(cpu, "test rows", 10, COLS, COLS);
        keep(cache, "a", 4, Set.of(), 1);
        write(cache.get("a", 1), -1);
        cache.put("x", 2, Set.of());
        keep(cache, "c", 3, Set.of(), 3);
        write(cache.get("c", 1), -3);
        keep(cache, "b", 3, Set.of("a", "c", "b"), 2);
        assertEquals(10, cache.capacity(), "no growth");
        assertFalse(cache.holds("x"));
        assertHolds(cache, "a", 4, 1);
        assertHolds(cache, "b", 3, 2);
        assertHolds(cache, "c", 3, 3);
        float[] second = cpu.toFloatArray(cache.get("c", 1));
        for (float value : second) assertEquals(-3f, value);
    }

    /** Entries that move to join the gaps keep their places in the least-recently-used order. */
    @Test
    void joiningTheGapsKeepsTheLeastRecentlyUsedOrder() {
        KeptRows cache = new KeptRows(cpu, "test rows", 12, COLS);
        for (String[] entry : new String[][]{{"p", "2"}, {"q", "3"}, {"r", "2"}, {"s", "3"}}) {
            cache.put(entry[0], Integer.parseInt(entry[1]), Set.of());
        }
        cache.get("s");
        cache.get("q");
        cache.get("p");  // least recently used first: r, s, q, p
        cache.put("n", 3, Set.of("p", "q", "s", "n"));  // drops r, then s moves down to join the gaps
        cache.put("m", 3, Set.of("n", "m"));  // drops the least recently used: s
        assertFalse(cache.holds("s"));
        assertTrue(cache.holds("q") && cache.holds("p") && cache.holds("n") && cache.holds("m"));
    }

    /**
     * Gaps are joined before more entries are dropped: with a (4), x (2), c (3), a free row and z (2)
     * in 12 rows, x least recently used, a 3-row entry drops x and then fits once the kept ones move
     * together; z, the next eldest, stays.
     */
    @Test
    void gapsAreJoinedBeforeMoreEntriesAreDropped() {
        KeptRows cache = new KeptRows(cpu, "test rows", 12, COLS);
        cache.put("a", 4, Set.of());
        cache.put("x", 2, Set.of());
        cache.put("c", 3, Set.of());
        cache.put("w", 1, Set.of());
        keep(cache, "z", 2, Set.of(), 9);
        cache.drop("w");
        cache.get("a");
        cache.get("c");  // eldest first: x, z, a, c
        cache.put("b", 3, Set.of("a", "c", "b"));
        assertEquals(12, cache.capacity());
        assertFalse(cache.holds("x"));
        assertTrue(cache.holds("z"), "z stays: the gaps x left join the free row once the kept entries move");
        assertHolds(cache, "z", 2, 9);
    }

    /**
     * Aligned entries (cross-attention rows read in blocks of the KV cache's size) start at multiples
     * of the alignment, also after the kept ones move together, and what fits is counted in whole blocks.
     */
    @Test
    void alignedEntriesStartAtMultiplesOfTheAlignmentAlsoWhenMoved() {
        KeptRows cache = new KeptRows(cpu, "test rows", 30, 8, new int[]{COLS});
        assertEquals(32, cache.capacity(), "the budget in whole blocks");
        keep(cache, "a", 5, Set.of(), 1);
        keep(cache, "x", 3, Set.of(), 7);
        keep(cache, "b", 9, Set.of(), 2);
        assertEquals(0, cache.firstRow("a"));
        assertEquals(8, cache.firstRow("x"));
        assertEquals(16, cache.firstRow("b"));
        cache.drop("a");
        keep(cache, "c", 6, Set.of("x", "b", "c"), 3);
        assertEquals(0, cache.firstRow("c"), "the gap a left holds six rows");
        cache.drop("x");
        // c takes the block at 0 and b the two at 16, which leaves one block free at 8: a 10-row entry
        // needs two, so c, the eldest not in use, goes.
        keep(cache, "d", 10, Set.of("b", "d"), 4);
        assertFalse(cache.holds("c"));
        for (String hash : new String[]{"b", "d"}) assertEquals(0, cache.firstRow(hash) % 8, hash);
        assertHolds(cache, "b", 9, 2);
        assertHolds(cache, "d", 10, 4);
        assertEquals(32, cache.capacity(), "no growth");
    }

    @Test
    void alignedGapsJoinWhenTheKeptEntriesMoveDown() {
        KeptRows cache = new KeptRows(cpu, "test rows", 32, 8, new int[]{COLS});
        keep(cache, "a", 3, Set.of(), 1);   // rows 0-2
        cache.put("x", 8, Set.of());         // rows 8-15
        keep(cache, "b", 5, Set.of(), 2);   // rows 16-20
        cache.put("y", 4, Set.of());         // rows 24-27
        cache.get("a");
        cache.get("b");  // eldest first: x, y, a, b
        // Every block is taken; with x dropped a 16-row entry still needs more than is free, with y
        // dropped too it fits once b moves down to the block after a's.
        keep(cache, "c", 16, Set.of("a", "b", "c"), 3);
        assertFalse(cache.holds("x") || cache.holds("y"));
        assertEquals(8, cache.firstRow("b"), "b moved down to the next block");
        assertEquals(16, cache.firstRow("c"));
        assertHolds(cache, "a", 3, 1);
        assertHolds(cache, "b", 5, 2);
        assertHolds(cache, "c", 16, 3);
        assertEquals(32, cache.capacity(), "no growth");
    }
}
