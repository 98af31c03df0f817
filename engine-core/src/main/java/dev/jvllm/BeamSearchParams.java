package dev.jvllm;

/**
 * How {@link LLM#beamSearch} searches, as vLLM's {@code BeamSearchParams}.
 *
 * @param beamWidth     the sequences kept at each step, and returned (1 to {@link SamplingParams#MAX_N}: each is a
 *                      sequence in the batch)
 * @param maxTokens     the most tokens a sequence grows by
 * @param ignoreEos     whether the end-of-sequence token ends a sequence (false) or is a token like any other
 * @param temperature   the temperature of the distribution whose log probabilities score the candidates (0: the
 *                      model's own; at most {@link SamplingParams#MAX_TEMPERATURE})
 * @param lengthPenalty a sequence's score is its cumulative log probability over its length (prompt included) to this power
 */
public record BeamSearchParams(int beamWidth, int maxTokens, boolean ignoreEos, double temperature, double lengthPenalty) {

    public BeamSearchParams {
        if (beamWidth < 1 || beamWidth > SamplingParams.MAX_N) {
            throw new InvalidRequestException("beamWidth", "beamWidth must be from 1 to " + SamplingParams.MAX_N + ", not " + beamWidth);
        }
        if (maxTokens < 1) throw new InvalidRequestException("maxTokens", "maxTokens must be at least 1, not " + maxTokens);
        if (!(temperature >= 0 && temperature <= SamplingParams.MAX_TEMPERATURE)) {
            throw new InvalidRequestException("temperature", "temperature must be from 0 to " + SamplingParams.MAX_TEMPERATURE
                    + ", not " + temperature);
        }
        if (!Double.isFinite(lengthPenalty)) throw new InvalidRequestException("lengthPenalty", "lengthPenalty must be finite");
    }

    /** Width and length, with vLLM's defaults for the rest: EOS ends a sequence, temperature 0, length penalty 1. */
    public BeamSearchParams(int beamWidth, int maxTokens) {
        this(beamWidth, maxTokens, false, 0.0, 1.0);
    }
}
