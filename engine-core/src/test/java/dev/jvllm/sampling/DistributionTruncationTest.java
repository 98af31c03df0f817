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

    /** vLLM's rule by a full sort: rank by weight (ties lower id first), keep while the mass ranked above is below p. */
    private static int[] referenceTopP(float[] weights, double topP) {
        double total = 0;
        for (float w : weights) if (w > 0) total += w;
        Integer[] order = IntStream.range(0, weights.length).filter(i -> weights[i] > 0).boxed().toArray(Integer[]::new);
        Arrays.sort(order, (a, b) -> weights[a] != weights[b] ? Float.compare(weights[b], weights[a]) : Integer.compare(a, b));
        double target = topP * total, above = 0;
        java.util.List<Integer> kept = new java.util.ArrayList<>();
        for (int i : order) {
            if (above >= target) break;
            kept.add(i);
            above += weights[i];
        }
        return kept.stream().mapToInt(Integer::intValue).sorted().toArray();
    }

    @Test
    void topPKeepsWhatAFullSortKeepsOnPeakedFlatAndTiedRows() {
        java.util.Random random = new java.util.Random(5);
        for (int row = 0; row < 300; row++) {
            int vocab = 1 + random.nextInt(row % 3 == 0 ? 20 : 5000);
            float[] w = new float[vocab];
            int kind = row % 5;
            for (int i = 0; i < vocab; i++) {
                w[i] = switch (kind) {
                    case 0 -> (float) Math.exp(-8 * random.nextDouble());           // spread over many scales
                    case 1 -> 1f - 1e-4f * random.nextInt(3);                        // nearly flat, many ties
                    case 2 -> random.nextInt(4) * 0.25f;                             // coarse ties and zeros
                    case 3 -> (float) Math.exp(-i * 0.05 * random.nextDouble());     // peaked head
                    default -> random.nextFloat() < 0.3 ? 0f : random.nextFloat();   // sparse
                };
            }
            double topP = row % 7 == 0 ? 0.999 : 0.05 + 0.9 * random.nextDouble();
            assertArrayEquals(referenceTopP(w, topP), keptAfterTopP(w, topP), "row " + row + " (kind " + kind
                    + ", vocab " + vocab + ", top-p " + topP + ")");
        }
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
