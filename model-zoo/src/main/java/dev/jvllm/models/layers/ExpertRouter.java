package dev.jvllm.models.layers;

import java.util.Arrays;

/**
 * Chooses, per token, the experts of a mixture and their weights from the router's logits.
 * Scores are the softmax of the logits (Mixtral, Qwen-MoE, DeepSeek-V2) or their sigmoids
 * (DeepSeek-V3). Experts may be split into {@code groups} equal groups of which only the
 * {@code groupsKept} best are eligible (DeepSeek-V2's "group_limited_greedy", scoring a group by
 * its best expert; DeepSeek-V3's "noaux_tc", by the sum of its two best). V3 adds a per-expert
 * {@code correctionBias} to the scores when choosing (auxiliary-loss-free balancing, arXiv:2412.19437
 * §2.1.2) but weighs the chosen experts by their unbiased scores. The {@code topK} chosen weights
 * are then optionally renormalized to sum to one, and multiplied by {@code scalingFactor}.
 *
 * @param groups         1 for no grouping
 * @param correctionBias per expert, or null
 */
public record ExpertRouter(int numExperts, int topK, Scoring scoring, int groups, int groupsKept,
                           GroupScore groupScore, float[] correctionBias, boolean normalize, float scalingFactor) {

    /** How logits become scores. */
    public enum Scoring { SOFTMAX, SIGMOID }

    /** How a group of experts is ranked. */
    public enum GroupScore {
        /** Its best expert's score (DeepSeek-V2). */
        BEST,
        /** The sum of its two best (DeepSeek-V3). */
        BEST_TWO
    }

    public ExpertRouter {
        if (topK <= 0 || topK > numExperts) {
            throw new IllegalArgumentException("cannot choose " + topK + " of " + numExperts + " experts");
        }
        if (groups <= 0 || numExperts % groups != 0 || groupsKept <= 0 || groupsKept > groups) {
            throw new IllegalArgumentException("cannot keep " + groupsKept + " of " + groups + " groups of "
                    + numExperts + " experts");
        }
        if (groupsKept * (numExperts / groups) < topK) {
            throw new IllegalArgumentException(groupsKept + " groups of " + numExperts / groups
                    + " experts hold fewer than the " + topK + " to choose");
        }
        if (correctionBias != null && correctionBias.length != numExperts) {
            throw new IllegalArgumentException(correctionBias.length + " correction biases for " + numExperts + " experts");
        }
        correctionBias = correctionBias == null ? null : correctionBias.clone();
    }

    /** Softmax over all experts, the {@code topK} best, renormalized when {@code normalize} (Mixtral, Qwen-MoE). */
    public static ExpertRouter softmaxTopK(int numExperts, int topK, boolean normalize) {
        return new ExpertRouter(numExperts, topK, Scoring.SOFTMAX, 1, 1, GroupScore.BEST, null, normalize, 1f);
    }

    /**
     * Whether this is plain softmax top-k over all experts (no groups, bias or scaling), which
     * {@link dev.jvllm.spi.Backend#routeSoftmaxTopK} computes where the logits are.
     */
    public boolean isPlainSoftmaxTopK() {
        return scoring == Scoring.SOFTMAX && groupsKept == groups && correctionBias == null && scalingFactor == 1f;
    }

    /** The experts chosen for each of a batch's tokens: token t's j-th choice is at {@code t · topK + j}. */
    public record Routes(int topK, int[] experts, float[] weights) {
    }

    /** Routes {@code tokens} tokens whose logits are {@code logits} ([tokens, numExperts], row-major). */
    public Routes route(float[] logits, int tokens) {
        if (logits.length != tokens * numExperts) {
            throw new IllegalArgumentException(logits.length + " router logits for " + tokens + " tokens of "
                    + numExperts + " experts");
        }
        int[] experts = new int[tokens * topK];
        float[] weights = new float[tokens * topK];
        float[] scores = new float[numExperts];
        float[] choice = new float[numExperts];
        for (int t = 0; t < tokens; t++) {
            score(logits, t * numExperts, scores);
            for (int e = 0; e < numExperts; e++) {
                choice[e] = correctionBias == null ? scores[e] : scores[e] + correctionBias[e];
            }
            if (groupsKept < groups) {
                excludeWeakGroups(choice);
            }
            float sum = 0;
            for (int j = 0; j < topK; j++) {
                int best = argMax(choice);
                choice[best] = Float.NEGATIVE_INFINITY;
                experts[t * topK + j] = best;
                weights[t * topK + j] = scores[best];
                sum += scores[best];
            }
            for (int j = 0; j < topK; j++) {
                float w = weights[t * topK + j];
                if (normalize) w /= sum + 1e-20f;
                weights[t * topK + j] = w * scalingFactor;
            }
        }
        return new Routes(topK, experts, weights);
    }

    private void score(float[] logits, int from, float[] scores) {
        if (scoring == Scoring.SIGMOID) {
            for (int e = 0; e < numExperts; e++) scores[e] = (float) (1 / (1 + Math.exp(-logits[from + e])));
            return;
        }
        double max = Double.NEGATIVE_INFINITY;
        for (int e = 0; e < numExperts; e++) max = Math.max(max, logits[from + e]);
        double total = 0;
        for (int e = 0; e < numExperts; e++) total += Math.exp(logits[from + e] - max);
        for (int e = 0; e < numExperts; e++) scores[e] = (float) (Math.exp(logits[from + e] - max) / total);
    }

    /** Sets every expert outside the {@code groupsKept} best groups to −∞. */
    private void excludeWeakGroups(float[] choice) {
        int size = numExperts / groups;
        float[] groupScores = new float[groups];
        for (int g = 0; g < groups; g++) {
            float[] members = Arrays.copyOfRange(choice, g * size, (g + 1) * size);
            Arrays.sort(members);
            groupScores[g] = groupScore == GroupScore.BEST || size == 1
                    ? members[size - 1]
                    : members[size - 1] + members[size - 2];
        }
        boolean[] kept = new boolean[groups];
        for (int k = 0; k < groupsKept; k++) {
            int best = argMax(groupScores);
            kept[best] = true;
            groupScores[best] = Float.NEGATIVE_INFINITY;
        }
        for (int g = 0; g < groups; g++) {
            if (!kept[g]) Arrays.fill(choice, g * size, (g + 1) * size, Float.NEGATIVE_INFINITY);
        }
    }

    /** The first index of the largest value. */
    private static int argMax(float[] values) {
        int best = 0;
        for (int i = 1; i < values.length; i++) {
            if (values[i] > values[best]) best = i;
        }
        return best;
    }
}
