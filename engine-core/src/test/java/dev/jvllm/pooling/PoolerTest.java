package dev.jvllm.pooling;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

class PoolerTest {

    /** Two inputs of hidden size 2: rows 0-1 are the first, rows 2-4 the second. */
    private static final float[] STATES = {1, 2, 3, 4, 5, 6, 7, 8, 9, 12};

    @Test
    void clsTakesTheFirstTokenOfTheInput() {
        assertArrayEquals(new float[]{5, 6}, Pooler.pool(PoolingType.CLS, STATES, 2, 3, 2));
    }

    @Test
    void lastTakesTheLastTokenOfTheInput() {
        assertArrayEquals(new float[]{3, 4}, Pooler.pool(PoolingType.LAST, STATES, 0, 2, 2));
    }

    @Test
    void meanAveragesOnlyTheInputsTokens() {
        assertArrayEquals(new float[]{7, 26 / 3f}, Pooler.pool(PoolingType.MEAN, STATES, 2, 3, 2), 1e-6f);
    }

    @Test
    void truncationHappensBeforeNormalization() {
        assertArrayEquals(new float[]{0.6f, 0.8f}, Pooler.finish(new float[]{3, 4, 100}, 2, true), 1e-6f);
        assertArrayEquals(new float[]{3, 4, 100}, Pooler.finish(new float[]{3, 4, 100}, 0, false));
    }

    @Test
    void aZeroVectorStaysZeroWhenNormalized() {
        assertArrayEquals(new float[]{0, 0}, Pooler.finish(new float[]{0, 0}, 0, true));
    }
}
