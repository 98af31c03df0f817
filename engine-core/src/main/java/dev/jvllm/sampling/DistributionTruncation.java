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
     * below {@code topP}, which is vLLM's rule. Ties rank the lower id first. Pops tokens from a
     * max-heap built in O(V), so the cost is O(V + kept · log V) rather than a sort.
     */
    static void applyTopP(float[] weights, double topP) {
        if (topP >= 1) {
            return;
        }
        int[] heap = new int[weights.length];
        int size = 0;
        double total = 0;
        for (int i = 0; i < weights.length; i++) {
            if (weights[i] > 0) {
                heap[size++] = i;
                total += weights[i];
            }
        }
        for (int i = size / 2 - 1; i >= 0; i--) {
            siftDown(heap, size, i, weights);
        }
        double target = topP * total;
        double kept = 0;
        while (size > 0 && kept < target) {
            kept += weights[heap[0]];
            heap[0] = heap[--size];
            siftDown(heap, size, 0, weights);
        }
        for (int i = 0; i < size; i++) {
            weights[heap[i]] = 0f;
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

    /** Max-heap order on weights, ties to the lower token id. */
    private static void siftDown(int[] heap, int size, int i, float[] weights) {
        while (true) {
            int best = i;
            int left = 2 * i + 1;
            int right = left + 1;
            if (left < size && ranksAbove(heap[left], heap[best], weights)) {
                best = left;
            }
            if (right < size && ranksAbove(heap[right], heap[best], weights)) {
                best = right;
            }
            if (best == i) {
                return;
            }
            int t = heap[i];
            heap[i] = heap[best];
            heap[best] = t;
            i = best;
        }
    }

    private static boolean ranksAbove(int a, int b, float[] weights) {
        return weights[a] > weights[b] || (weights[a] == weights[b] && a < b);
    }
}
