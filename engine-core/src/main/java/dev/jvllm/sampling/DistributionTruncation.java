package dev.jvllm.sampling;

/**
 * Min-p, top-k and top-p over a row of unnormalized probabilities ("weights"), each setting to 0
 * the weights of the tokens it drops. The row's largest weight is 1: weights are
 * {@code exp((logit - maxLogit) / temperature)}, so nothing overflows and the argmax always
 * survives. None of them sorts the vocabulary.
 */
final class DistributionTruncation {

    private DistributionTruncation() {
    }

    /**
     * Drops tokens whose probability is below {@code minP} times the largest probability. With the
     * largest weight at 1 that is simply {@code weight < minP} (Nguyen et al. 2024).
     */
    static void applyMinP(float[] weights, float minP) {
        for (int i = 0; i < weights.length; i++) {
            if (weights[i] < minP) {
                weights[i] = 0f;
            }
        }
    }

    /** Keeps the {@code k} largest weights; tokens tied with the k-th largest are kept too, as in vLLM. */
    static void applyTopK(float[] weights, int k) {
        int candidates = 0;
        for (float w : weights) {
            if (w > 0) {
                candidates++;
            }
        }
        if (candidates <= k) {
            return;
        }
        TopTokens top = new TopTokens(k);
        for (int i = 0; i < weights.length; i++) {
            if (weights[i] > 0) {
                top.offer(weights[i], i);
            }
        }
        float kthLargest = top.worstValue();
        for (int i = 0; i < weights.length; i++) {
            if (weights[i] < kthLargest) {
                weights[i] = 0f;
            }
        }
    }

    /**
     * Keeps the smallest set of most likely tokens whose probability mass reaches {@code topP}
     * (Holtzman et al. 2020): a token survives when the mass of the tokens ranked above it is still
     * below {@code topP}, which is vLLM's rule. Ties rank the lower id first.
     *
     * <p>The last survivor's weight is found by a radix selection on the weights' bits (weights
     * are non-negative, so their bits order as their values do): a histogram of count and mass per
     * leading bits finds the bucket where the mass reaches the target, then the next bits within
     * that bucket, three levels in all, each pass over fewer tokens. A heap popped token by token
     * cost O(kept · log V): 6 ms a row for a 128k vocabulary whose nucleus held tens of thousands
     * of tokens (20 ms for the near-flat rows of random weights); this is O(V).
     */
    static void applyTopP(float[] weights, double topP) {
        if (topP >= 1) {
            return;
        }
        double total = 0;
        int positive = 0;
        for (float w : weights) {
            if (w > 0) {
                total += w;
                positive++;
            }
        }
        if (positive == 0) {
            return;
        }
        double target = topP * total;
        int[] candidates = new int[positive];
        int count = 0;
        for (int i = 0; i < weights.length; i++) {
            if (weights[i] > 0) candidates[count++] = i;
        }
        // Mass of the tokens known to rank above every remaining candidate.
        double above = 0;
        int[] shifts = {21, 10, 0};
        int[] widths = {11, 11, 10};
        int prefixBits = 0;  // the bits above the current level's, shared by every candidate
        for (int level = 0; level < shifts.length && count > 0; level++) {
            int shift = shifts[level];
            int buckets = 1 << widths[level];
            int mask = buckets - 1;
            int[] counts = new int[buckets];
            double[] masses = new double[buckets];
            for (int c = 0; c < count; c++) {
                int bucket = (Float.floatToRawIntBits(weights[candidates[c]]) >>> shift) & mask;
                counts[bucket]++;
                masses[bucket] += weights[candidates[c]];
            }
            // From the heaviest bucket down, the one whose mass takes the kept mass to the target;
            // the buckets above it are kept whole. (Rounding may leave the target unreached: then
            // the lightest bucket holds the boundary.)
            int chosen = -1;
            boolean reached = false;
            for (int b = buckets - 1; b >= 0; b--) {
                if (counts[b] == 0) continue;
                chosen = b;
                if (above + masses[b] >= target) {
                    reached = true;
                    break;
                }
                above += masses[b];
            }
            if (!reached) above -= masses[chosen];
            int kept = 0;
            for (int c = 0; c < count; c++) {
                if (((Float.floatToRawIntBits(weights[candidates[c]]) >>> shift) & mask) == chosen) {
                    candidates[kept++] = candidates[c];
                }
            }
            count = kept;
            prefixBits |= chosen << shift;
        }
        // The candidates left all weigh the boundary weight; in id order (as gathered), each survives
        // while the mass ranked above it is below the target.
        float boundary = Float.intBitsToFloat(prefixBits);
        int lastTie = -1;
        for (int c = 0; c < count; c++) {
            if (above >= target) break;
            above += weights[candidates[c]];
            lastTie = candidates[c];
        }
        for (int i = 0; i < weights.length; i++) {
            float w = weights[i];
            if (w < boundary || (w == boundary && i > lastTie)) {
                weights[i] = 0f;
            }
        }
    }

    /**
     * Draws a token with probability proportional to its weight.
     *
     * @param uniform a number in [0, 1)
     */
    static int draw(float[] weights, double uniform) {
        double total = 0;
        for (float w : weights) {
            total += w;
        }
        double target = uniform * total;
        double cumulative = 0;
        int lastCandidate = -1;
        for (int i = 0; i < weights.length; i++) {
            if (weights[i] > 0) {
                cumulative += weights[i];
                lastCandidate = i;
                if (cumulative > target) {
                    return i;
                }
            }
        }
        return lastCandidate; // only reached through rounding when uniform is just below 1
    }
}
