package dev.jvllm;

import dev.jvllm.engine.TokenIdList;

import java.util.List;
import java.util.Map;

/**
 * One generated sequence of a request (a request with {@code n > 1} has several).
 *
 * @param index             which of the n sequences
 * @param text              the generated text (stop strings excluded unless asked for)
 * @param tokenIds          the generated token ids
 * @param cumulativeLogprob sum of the sampled tokens' log probabilities (NaN when logprobs were not requested)
 * @param logprobs          per generated token, the top-N (and sampled) token ids with their log probabilities; null unless requested
 * @param finishReason      why it ended; null while still running
 * @param stopReason        the stop string or stop token id that ended it, else null
 */
public record CompletionOutput(int index, String text, List<Integer> tokenIds, double cumulativeLogprob,
                               List<Map<Integer, Logprob>> logprobs, FinishReason finishReason, Object stopReason) {

    public CompletionOutput {
        tokenIds = tokenIds instanceof TokenIdList ? tokenIds : List.copyOf(tokenIds);
        logprobs = logprobs == null ? null : List.copyOf(logprobs);
    }

    public boolean finished() {
        return finishReason != null;
    }

    /** The token ids as an array. */
    public int[] tokenIdArray() {
        return tokenIds instanceof TokenIdList ids ? ids.toIntArray() : tokenIds.stream().mapToInt(Integer::intValue).toArray();
    }
}
