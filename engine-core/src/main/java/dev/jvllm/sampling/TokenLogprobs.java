package dev.jvllm.sampling;

import dev.jvllm.Logprob;

import java.util.Map;

/**
 * The logprobs at one position: those of the token that stands there (sampled, or given in the
 * prompt) and of the most likely tokens, all from the log-softmax of the model's raw logits
 * (vLLM's default {@code logprobs_mode}, {@code raw_logprobs}), before penalties, temperature or
 * truncation.
 *
 * @param token the token's logprob and rank
 * @param top   the requested number of most likely token ids with their logprobs, ranked 1, 2, …,
 *              iterating from the most likely; unmodifiable; may or may not contain the token itself
 */
public record TokenLogprobs(Logprob token, Map<Integer, Logprob> top) {
}
