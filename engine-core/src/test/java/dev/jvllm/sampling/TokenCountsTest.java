package dev.jvllm.sampling;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;

class TokenCountsTest {

    @Test
    void countsEachOccurrence() {
        TokenCounts counts = new TokenCounts();
        assertEquals(1, counts.increment(42));
        assertEquals(2, counts.increment(42));
        assertEquals(1, counts.increment(7));
        assertEquals(2, counts.count(42));
        assertEquals(1, counts.count(7));
        assertEquals(0, counts.count(8));
    }

    @Test
    void keepsDistinctTokensInFirstSeenOrder() {
        TokenCounts counts = new TokenCounts();
        for (int token : new int[] {5, 3, 5, 9, 3, 5}) {
            counts.increment(token);
        }
        assertEquals(3, counts.size());
        assertEquals(5, counts.tokenAt(0));
        assertEquals(3, counts.countAt(0));
        assertEquals(3, counts.tokenAt(1));
        assertEquals(2, counts.countAt(1));
        assertEquals(9, counts.tokenAt(2));
        assertEquals(1, counts.countAt(2));
    }

    @Test
    void survivesGrowthPastManyDistinctTokens() {
        TokenCounts counts = new TokenCounts();
        for (int round = 1; round <= 3; round++) {
            for (int token = 0; token < 100_000; token += 3) {
                counts.increment(token);
            }
        }
        assertEquals(33_334, counts.size());
        for (int token = 0; token < 100_000; token++) {
            assertEquals(token % 3 == 0 ? 3 : 0, counts.count(token));
        }
    }
}
