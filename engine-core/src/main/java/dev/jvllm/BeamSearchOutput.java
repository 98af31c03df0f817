package dev.jvllm;

import java.util.List;

/**
 * The sequences {@link LLM#beamSearch} found for one prompt, best first.
 *
 * @param sequences at most the beam width of them, by score
 */
public record BeamSearchOutput(List<Sequence> sequences) {

    public BeamSearchOutput {
        sequences = List.copyOf(sequences);
    }

    /**
     * One sequence.
     *
     * @param tokenIds          the generated tokens (the prompt's not included; an ending EOS included)
     * @param text              their text, special tokens skipped
     * @param cumulativeLogprob the sum of the tokens' log probabilities
     * @param score             what it was ranked by: the cumulative log probability over the length to the length penalty
     */
    public record Sequence(List<Integer> tokenIds, String text, double cumulativeLogprob, double score) {

        public Sequence {
            tokenIds = List.copyOf(tokenIds);
        }
    }
}
