package dev.jvllm;

import java.util.List;

/**
 * The result of one input of {@link LLM#classify}: vLLM's {@code ClassificationRequestOutput}.
 *
 * @param requestId      the id the input ran under
 * @param probs          each label's probability (a softmax over several labels; a sigmoid for one)
 * @param labels         the labels' names, in the order of {@code probs}
 * @param promptTokenIds the tokens the model saw
 */
public record ClassificationOutput(String requestId, float[] probs, List<String> labels, int[] promptTokenIds) {

    public ClassificationOutput {
        if (probs.length != labels.size()) throw new IllegalArgumentException(probs.length + " probabilities for " + labels.size() + " labels");
        labels = List.copyOf(labels);
    }

    /** The most probable label's name. */
    public String label() {
        int best = 0;
        for (int i = 1; i < probs.length; i++) if (probs[i] > probs[best]) best = i;
        return labels.get(best);
    }

    /** The probability of the label of this name. */
    public float probability(String label) {
        int at = labels.indexOf(label);
        if (at < 0) throw new IllegalArgumentException("no label '" + label + "' (" + labels + ")");
        return probs[at];
    }
}
