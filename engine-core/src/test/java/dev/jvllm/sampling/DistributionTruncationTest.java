package dev.jvllm.sampling;

import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.stream.IntStream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

class DistributionTruncationTest {

    /** Probabilities [0.05, 0.5, 0.15, 0.3] as weights relative to the largest. */
    private static final float[] WEIGHTS = {0.1f, 1.0f, 0.3f, 0.6f};

    private static int[] keptAfterTopP(float[] weights, double topP) {
        float[] w = weights.clone();
        DistributionTruncation.applyTopP(w, topP);
        return kept(w);
    }

    private static int[] kept(float[] weights) {
        return IntStream.range(0, weights.length).filter(i -> weights[i] > 0).toArray();
    }

    @Test
    void topPKeepsTheSmallestMostLikelySetWhoseMassReachesP() {
        assertArrayEquals(new int[] {1}, keptAfterTopP(WEIGHTS, 0.4));        // 0.5 >= 0.4
        assertArrayEquals(new int[] {1, 3}, keptAfterTopP(WEIGHTS, 0.75));    // 0.5 < 0.75 <= 0.8
        assertArrayEquals(new int[] {1, 2, 3}, keptAfterTopP(WEIGHTS, 0.9));  // 0.8 < 0.9 <= 0.95
        assertArrayEquals(new int[] {0, 1, 2, 3}, keptAfterTopP(WEIGHTS, 0.99));
    }

    @Test
    void topPLeavesKeptWeightsUnchanged() {
        float[] w = WEIGHTS.clone();
        DistributionTruncation.applyTopP(w, 0.75);
        assertArrayEquals(new float[] {0f, 1.0f, 0f, 0.6f}, w);
    }

    @Test
    void topPRanksTiedTokensLowerIdFirst() {
        assertArrayEquals(new int[] {1, 2}, keptAfterTopP(new float[] {0.2f, 1f, 1f, 1f}, 0.5));
    }

    @Test
    void topPOverALargeVocabularyKeepsTheHeadOfTheDistribution() {
        float[] w = new float[150_000];
        for (int i = 0; i < w.length; i++) {
            w[(i * 7919) % w.length] = (float) Math.exp(-i / 10.0); // a permuted geometric tail
        }
        DistributionTruncation.applyTopP(w, 0.9);
        // mass of the first m ranks is 1 - r^m with r = exp(-0.1): m = ceil(ln 0.1 / ln r) = 24
        assertEquals(24, kept(w).length);
    }

    @Test
    void topKKeepsTheKLargestAndTiesWithTheKth() {
        float[] w = {0.5f, 1f, 0.2f, 0.5f, 0.7f};
        DistributionTruncation.applyTopK(w, 2);
        assertArrayEquals(new int[] {1, 4}, kept(w));
        float[] tied = {0.5f, 1f, 0.2f, 0.5f, 0.7f};
        DistributionTruncation.applyTopK(tied, 3);
        assertArrayEquals(new int[] {0, 1, 3, 4}, kept(tied));
    }

    @Test
    void topKLargerThanTheCandidatesKeepsThemAll() {
        float[] w = {0f, 1f, 0.3f};
        DistributionTruncation.applyTopK(w, 5);
        assertArrayEquals(new float[] {0f, 1f, 0.3f}, w);
    }

    @Test
    void minPDropsTokensBelowThatFractionOfTheMostLikely() {
        float[] w = WEIGHTS.clone();
        DistributionTruncation.applyMinP(w, 0.3f);
        assertArrayEquals(new int[] {1, 2, 3}, kept(w));
        DistributionTruncation.applyMinP(w, 0.5f);
        assertArrayEquals(new int[] {1, 3}, kept(w));
    }

    @Test
    void drawFollowsTheCumulativeWeights() {
        float[] w = {0f, 1f, 0f, 3f}; // P(1) = 0.25, P(3) = 0.75
        assertEquals(1, DistributionTruncation.draw(w, 0.0));
        assertEquals(1, DistributionTruncation.draw(w, 0.2499));
        assertEquals(3, DistributionTruncation.draw(w, 0.25));
        assertEquals(3, DistributionTruncation.draw(w, Math.nextDown(1.0)));
        assertArrayEquals(new float[] {0f, 1f, 0f, 3f}, w);
    }

    @Test
    void truncationNeverChangesTheWeightsItKeeps() {
        float[] w = {0.1f, 1.0f, 0.3f, 0.6f, 0.05f};
        float[] before = w.clone();
        DistributionTruncation.applyMinP(w, 0.08f);
        DistributionTruncation.applyTopK(w, 3);
        DistributionTruncation.applyTopP(w, 0.8);
        for (int i : kept(w)) {
            assertEquals(before[i], w[i]);
        }
        // min-p drops 0.05, top-k drops 0.1, top-p 0.8 of the remaining 1.9 keeps 1.0 + 0.6
        assertEquals("[0.0, 1.0, 0.0, 0.6, 0.0]", Arrays.toString(w));
    }
}
