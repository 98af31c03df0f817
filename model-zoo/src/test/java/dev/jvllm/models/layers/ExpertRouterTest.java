package dev.jvllm.models.layers;

import dev.jvllm.models.layers.ExpertRouter.GroupScore;
import dev.jvllm.models.layers.ExpertRouter.Routes;
import dev.jvllm.models.layers.ExpertRouter.Scoring;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/** How router logits become the experts of each token and their weights. */
class ExpertRouterTest {

    @Test
    void softmaxTopTwoRenormalizedWeighsTheTwoBestBySoftmaxOfTheirLogits() {
        Routes routes = ExpertRouter.softmaxTopK(4, 2, true).route(new float[]{0.5f, 2f, -1f, 1f}, 1);
        assertArrayEquals(new int[]{1, 3}, routes.experts());
        double e = Math.exp(1); // softmax over the two chosen logits 2 and 1
        assertArrayEquals(new float[]{(float) (e / (e + 1)), (float) (1 / (e + 1))}, routes.weights(), 1e-6f);
    }

    @Test
    void withoutRenormalizationTheWeightsAreTheSoftmaxOverAllExperts() {
        float[] logits = {0f, 0f, 0f, 0f};
        Routes routes = ExpertRouter.softmaxTopK(4, 1, false).route(logits, 1);
        assertEquals(0.25f, routes.weights()[0], 1e-7f);
    }

    @Test
    void eachTokenIsRoutedOnItsOwnRowOfLogits() {
        Routes routes = ExpertRouter.softmaxTopK(3, 1, true).route(new float[]{3, 0, 0, 0, 0, 3}, 2);
        assertArrayEquals(new int[]{0, 2}, routes.experts());
        assertArrayEquals(new float[]{1, 1}, routes.weights(), 1e-6f);
    }

    @Test
    void groupLimitedGreedyChoosesOnlyWithinTheGroupsWithTheBestExpert() {
        // Groups {0,1}, {2,3}, {4,5}: the best experts are 0 (group 0) and 5 (group 2); keeping one
        // group means the top two are 0 and 1, although 5 scores above 1.
        float[] logits = {3f, 0f, -1f, -1f, -2f, 2.5f};
        var router = new ExpertRouter(6, 2, Scoring.SOFTMAX, 3, 1, GroupScore.BEST, null, false, 2f);
        Routes routes = router.route(logits, 1);
        assertArrayEquals(new int[]{0, 1}, routes.experts());
        double total = 0;
        for (float l : logits) total += Math.exp(l);
        assertEquals((float) (2 * Math.exp(3) / total), routes.weights()[0], 1e-6f, "softmax score × routed scaling");
    }

    @Test
    void groupsRankedByTheirTwoBestScoresCanPassOverTheSingleBestExpert() {
        // Group {0,1} holds the best expert but group {2,3} the best pair.
        float[] logits = {4f, -4f, 2f, 2f};
        var router = new ExpertRouter(4, 1, Scoring.SIGMOID, 2, 1, GroupScore.BEST_TWO, null, false, 1f);
        assertEquals(2, router.route(logits, 1).experts()[0]);
    }

    @Test
    void correctionBiasChangesWhichExpertIsChosenButNotItsWeight() {
        float[] logits = {1f, 0.5f};
        float[] bias = {0f, 0.3f};
        var router = new ExpertRouter(2, 1, Scoring.SIGMOID, 1, 1, GroupScore.BEST_TWO, bias, false, 2.5f);
        Routes routes = router.route(logits, 1);
        assertEquals(1, routes.experts()[0]);
        assertEquals((float) (2.5 / (1 + Math.exp(-0.5))), routes.weights()[0], 1e-6f);
    }

    @Test
    void sigmoidWeightsRenormalizeBeforeRoutedScaling() {
        var router = new ExpertRouter(3, 2, Scoring.SIGMOID, 1, 1, GroupScore.BEST_TWO, null, true, 2.5f);
        Routes routes = router.route(new float[]{1f, 0f, -1f}, 1);
        double a = 1 / (1 + Math.exp(-1)), b = 0.5;
        assertArrayEquals(new float[]{(float) (2.5 * a / (a + b)), (float) (2.5 * b / (a + b))}, routes.weights(), 1e-6f);
    }

    @Test
    void impossibleChoicesAreRejectedNamingTheCounts() {
        var tooMany = assertThrows(IllegalArgumentException.class, () -> ExpertRouter.softmaxTopK(4, 5, true));
        assertEquals("cannot choose 5 of 4 experts", tooMany.getMessage());
        var tooFewInGroups = assertThrows(IllegalArgumentException.class,
                () -> new ExpertRouter(8, 4, Scoring.SOFTMAX, 4, 1, GroupScore.BEST, null, false, 1f));
        assertEquals("1 groups of 2 experts hold fewer than the 4 to choose", tooFewInGroups.getMessage());
    }
}
