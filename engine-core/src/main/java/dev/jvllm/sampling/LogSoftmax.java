package dev.jvllm.sampling;

import dev.jvllm.Logprob;

import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;

/** Logprobs of one row of logits, without materializing the log-softmax of the whole vocabulary. */
final class LogSoftmax {

    private LogSoftmax() {
    }

    /** The logprob and rank of {@code tokenId} and the {@code topN} most likely tokens of {@code logits}. */
    static TokenLogprobs tokenLogprobs(float[] logits, int tokenId, int topN) {
        double logNormalizer = logSumExp(logits);
        float tokenLogit = logits[tokenId];
        int rank = 0;
        TopTokens top = new TopTokens(topN);
        for (int i = 0; i < logits.length; i++) {
            if (logits[i] >= tokenLogit) {
                rank++; // vLLM's rank: tokens at least as likely, the token included
            }
            top.offer(logits[i], i);
        }
        int[] best = top.drainBestFirst();
        Map<Integer, Logprob> topLogprobs = new LinkedHashMap<>();
        for (int i = 0; i < best.length; i++) {
            topLogprobs.put(best[i], new Logprob((float) (logits[best[i]] - logNormalizer), i + 1, null));
        }
        return new TokenLogprobs(new Logprob((float) (tokenLogit - logNormalizer), rank, null),
                Collections.unmodifiableMap(topLogprobs));
    }

    /** {@code log(sum(exp(logits)))}, shifted by the maximum so that nothing overflows. */
    static double logSumExp(float[] logits) {
        float max = Float.NEGATIVE_INFINITY;
        for (float x : logits) {
            max = Math.max(max, x);
        }
        if (Float.isInfinite(max)) {
            return max;
        }
        double sum = 0;
        for (float x : logits) {
            sum += Math.exp(x - max);
        }
        return max + Math.log(sum);
    }
}
