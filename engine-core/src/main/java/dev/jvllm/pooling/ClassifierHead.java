package dev.jvllm.pooling;

import java.util.List;

/**
 * A sequence classifier's head over the pooled state of an input (BERT's pooler and classifier,
 * RoBERTa's classification head): {@code out(tanh(dense(x)))}, or {@code out(x)} without a dense
 * layer. It runs on the heap, on one vector an input. Its logits become probabilities as vLLM's
 * classifiers make them: a softmax over several labels, a sigmoid for one (a cross-encoder's score).
 */
public final class ClassifierHead {

    private final int hidden;
    private final float[] denseWeight;
    private final float[] denseBias;
    private final float[] outWeight;
    private final float[] outBias;
    private final List<String> labels;

    /**
     * @param denseWeight [hidden, hidden] row-major, or null for a head without the dense layer (then denseBias too)
     * @param outWeight   [labels, hidden] row-major
     * @param outBias     [labels], or null
     * @param labels      each label's name, in the order of the output rows
     */
    public ClassifierHead(int hidden, float[] denseWeight, float[] denseBias, float[] outWeight, float[] outBias, List<String> labels) {
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
    }

    public int numLabels() {
        return labels.size();
    }

    /** The labels' names ({@code id2label}, else LABEL_0, LABEL_1, ...), in the order of the probabilities. */
    public List<String> labels() {
        return labels;
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

    /** Probabilities from logits: a sigmoid for one label, a softmax over several. */
    public static float[] probabilities(float[] logits) {
        float[] p = new float[logits.length];
        if (logits.length == 1) {
            p[0] = (float) (1 / (1 + Math.exp(-logits[0])));
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
