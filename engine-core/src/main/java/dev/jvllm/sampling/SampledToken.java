package dev.jvllm.sampling;

import java.util.Optional;

/**
 * One token the {@link Sampler} chose for a sequence.
 *
 * @param tokenId  the token
 * @param logprobs its logprob, rank and the top alternatives; present exactly when the request's
 *                 {@link dev.jvllm.SamplingParams#logprobs()} is
 */
public record SampledToken(int tokenId, Optional<TokenLogprobs> logprobs) {
}
