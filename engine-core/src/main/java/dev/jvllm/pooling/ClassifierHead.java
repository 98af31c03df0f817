package dev.jvllm.pooling;

import com.fasterxml.jackson.databind.JsonNode;
import dev.jvllm.InvalidRequestException;

import java.util.List;

/**
 * A sequence classifier's head over the pooled state of an input (BERT's pooler and classifier,
 * RoBERTa's classification head, a decoder's score layer): {@code out(tanh(dense(x)))}, or
 * {@code out(x)} without a dense layer. It runs on the heap, on one vector an input.
 *
 * <p>Its logits become a classification's probabilities as vLLM's classifiers make them (a softmax
 * over several labels; a sigmoid for one, or for each label of a multi-label classifier), and a
 * cross-encoder's score as sentence-transformers and vLLM make it: the checkpoint's activation
 * ({@code sentence_transformers.activation_fn}, or the older {@code sbert_ce_default_activation_function};
 * Identity gives the raw logit), else a sigmoid.
 */
public final class ClassifierHead {

    /** What a cross-encoder's one logit goes through to become its score. */
    public enum ScoreActivation {
        SIGMOID, LOG_SIGMOID, IDENTITY, TANH;

        double apply(double logit) {
            return switch (this) {
                case SIGMOID -> 1 / (1 + Math.exp(-logit));
                case LOG_SIGMOID -> -Math.log1p(Math.exp(-logit));
                case IDENTITY -> logit;
                case TANH -> Math.tanh(logit);
            };
        }

        /**
         * The activation a sentence-transformers name gives (its class's simple name; Softmax over one
         * logit is vLLM's default, a sigmoid); null where none fits.
         */
        static ScoreActivation named(String name) {
            String simple = name.substring(name.lastIndexOf('.') + 1);
            return switch (simple) {
                case "", "Sigmoid", "Softmax" -> SIGMOID;
                case "LogSigmoid" -> LOG_SIGMOID;
                case "Identity" -> IDENTITY;
                case "Tanh" -> TANH;
                default -> null;
            };
        }
    }

    /**
     * How the checkpoint reads its head.
     *
     * @param problemType     {@code problem_type}: "multi_label_classification" gives each label its own
     *                        sigmoid, "regression" the raw logits (a reward model's scores), else the usual
     * @param activationName  a cross-encoder's activation of its logit, as its sentence-transformers config
     *                        names it ("" for the default, a sigmoid)
     * @param padTokenId      a decoder's pad token id: the pooled token is the last one that is not it, as
     *                        Transformers pools (-1: the last token)
     */
    public record Reading(String problemType, String activationName, int padTokenId) {
        /** From config.json: {@code problem_type} and the sentence-transformers activation (a decoder's pad id given apart). */
        public static Reading of(JsonNode config, int padTokenId) {
            return new Reading(config.path("problem_type").asText(""), config.path("sentence_transformers").path("activation_fn")
                    .asText(config.path("sbert_ce_default_activation_function").asText("")), padTokenId);
        }
    }

    private final int hidden;
    private final float[] denseWeight;
    private final float[] denseBias;
    private final float[] outWeight;
    private final float[] outBias;
    private final List<String> labels;
    private final Reading reading;
    private final ScoreActivation activation;  // null: the checkpoint names one jvllm does not apply, refused when a score is asked for

    /**
     * @param denseWeight [hidden, hidden] row-major, or null for a head without the dense layer (then denseBias too)
     * @param outWeight   [labels, hidden] row-major
     * @param outBias     [labels], or null
     * @param labels      each label's name, in the order of the output rows
     */
    public ClassifierHead(int hidden, float[] denseWeight, float[] denseBias, float[] outWeight, float[] outBias, List<String> labels,
                          Reading reading) {
        if (labels.isEmpty()) throw new IllegalArgumentException("a classifier needs at least one label");
        if (outWeight.length != labels.size() * hidden || (outBias != null && outBias.length != labels.size())
                || (denseWeight != null && (denseWeight.length != hidden * hidden || denseBias == null || denseBias.length != hidden))) {
            throw new IllegalArgumentException("the classifier's weights do not fit " + labels.size() + " labels over " + hidden + " features");
        }
        this.hidden = hidden;
        this.denseWeight = denseWeight;
        this.denseBias = denseBias;
        this.outWeight = outWeight;
        this.outBias = outBias;
        this.labels = List.copyOf(labels);
        this.reading = reading;
        this.activation = ScoreActivation.named(reading.activationName());
    }

    public int numLabels() {
        return labels.size();
    }

    /** The labels' names ({@code id2label}, else LABEL_0, LABEL_1, ...), in the order of the probabilities. */
    public List<String> labels() {
        return labels;
    }

    /** The decoder's pad token id, skipped at an input's end when the last token is pooled (-1: none). */
    public int padTokenId() {
        return reading.padTokenId();
    }

    /** The head's logits for one pooled state [hidden]. */
    public float[] logits(float[] pooled) {
        if (pooled.length != hidden) throw new IllegalArgumentException("a pooled state of " + pooled.length + " features, not " + hidden);
        float[] x = pooled;
        if (denseWeight != null) {
            x = new float[hidden];
            for (int o = 0; o < hidden; o++) x[o] = (float) Math.tanh(dot(denseWeight, o, pooled) + denseBias[o]);
        }
        float[] logits = new float[labels.size()];
        for (int o = 0; o < logits.length; o++) logits[o] = (float) (dot(outWeight, o, x) + (outBias == null ? 0 : outBias[o]));
        return logits;
    }

    /**
     * A classification's probabilities from logits, as vLLM's classifiers make them: each label's sigmoid
     * for a multi-label classifier, the logits themselves for a regression (a reward model), else
     * {@link #probabilities(float[])}.
     */
    public float[] classProbabilities(float[] logits) {
        switch (reading.problemType()) {
            case "regression" -> {
                return logits.clone();
            }
            case "multi_label_classification" -> {
                float[] p = new float[logits.length];
                for (int i = 0; i < p.length; i++) p[i] = (float) ScoreActivation.SIGMOID.apply(logits[i]);
                return p;
            }
            default -> {
                return probabilities(logits);
            }
        }
    }

    /**
     * The activation of a cross-encoder's score.
     *
     * @throws InvalidRequestException where the checkpoint names one jvllm does not apply
     */
    public ScoreActivation scoreActivation() {
        if (activation == null) {
            throw new InvalidRequestException("model", "the cross-encoder's activation '" + reading.activationName()
                    + "' is not one jvllm applies (Identity, Sigmoid, LogSigmoid, Softmax, Tanh)");
        }
        return activation;
    }

    /** A cross-encoder's score from its one logit, through the checkpoint's activation ({@link #scoreActivation()}). */
    public double score(float[] logits) {
        if (logits.length != 1) throw new IllegalArgumentException("a score needs one logit, not " + logits.length);
        return scoreActivation().apply(logits[0]);
    }

    /** Probabilities from logits: a sigmoid for one label, a softmax over several. */
    public static float[] probabilities(float[] logits) {
        float[] p = new float[logits.length];
        if (logits.length == 1) {
            p[0] = (float) ScoreActivation.SIGMOID.apply(logits[0]);
            return p;
        }
        double max = Double.NEGATIVE_INFINITY, sum = 0;
        for (float v : logits) max = Math.max(max, v);
        for (int i = 0; i < p.length; i++) sum += Math.exp(logits[i] - max);
        for (int i = 0; i < p.length; i++) p[i] = (float) (Math.exp(logits[i] - max) / sum);
        return p;
    }

    private double dot(float[] weight, int row, float[] x) {
        double sum = 0;
        for (int i = 0, at = row * hidden; i < hidden; i++) sum += (double) weight[at + i] * x[i];
        return sum;
    }
}
