package dev.jvllm.sampling;

import java.util.Arrays;

/** The steps that edit a row of logits before sampling, each as vLLM v1 defines it. */
final class LogitsProcessors {

    private LogitsProcessors() {
    }

    /** Sets every logit to -inf except those of {@code allowedTokenIds}. */
    static void keepOnly(float[] logits, int[] allowedTokenIds) {
        float[] kept = new float[allowedTokenIds.length];
        for (int i = 0; i < allowedTokenIds.length; i++) {
            kept[i] = logits[allowedTokenIds[i]];
        }
        Arrays.fill(logits, Float.NEGATIVE_INFINITY);
        for (int i = 0; i < allowedTokenIds.length; i++) {
            logits[allowedTokenIds[i]] = kept[i];
        }
    }

    /** Sets the logits of {@code tokenIds} to -inf. */
    static void mask(float[] logits, int[] tokenIds) {
        for (int id : tokenIds) {
            logits[id] = Float.NEGATIVE_INFINITY;
        }
    }

    /** Adds {@code biases[i]} to the logit of {@code tokenIds[i]}. */
    static void addBias(float[] logits, int[] tokenIds, float[] biases) {
        for (int i = 0; i < tokenIds.length; i++) {
            logits[tokenIds[i]] += biases[i];
        }
    }

    /**
     * For every token seen in the prompt or the output, divides a positive logit by
     * {@code penalty} and multiplies a non-positive one (Keskar et al. 2019, CTRL).
     */
    static void applyRepetitionPenalty(float[] logits, TokenCounts seenTokens, float penalty) {
        for (int i = 0; i < seenTokens.size(); i++) {
            int id = seenTokens.tokenAt(i);
            logits[id] = logits[id] > 0 ? logits[id] / penalty : logits[id] * penalty;
        }
    }

    /**
     * For every token in the output: {@code logit -= frequencyPenalty * count + presencePenalty}
     * (the OpenAI definition).
     */
    static void applyFrequencyAndPresencePenalties(float[] logits, TokenCounts outputCounts,
                                                   float frequencyPenalty, float presencePenalty) {
        for (int i = 0; i < outputCounts.size(); i++) {
            logits[outputCounts.tokenAt(i)] -= frequencyPenalty * outputCounts.countAt(i) + presencePenalty;
        }
    }

    /** The index of the largest logit, ties to the lowest id; NaN never wins, and a row of -inf gives 0. */
    static int argmax(float[] logits) {
        int best = 0;
        float bestValue = Float.NEGATIVE_INFINITY;
        for (int i = 0; i < logits.length; i++) {
            if (logits[i] > bestValue) {
                bestValue = logits[i];
                best = i;
            }
        }
        return best;
    }
}
