package dev.jvllm;

/**
 * The result of one input of {@link LLM#embed}: vLLM's {@code EmbeddingRequestOutput}.
 *
 * @param requestId      the id the input ran under
 * @param embedding      the pooled vector (normalized and truncated as the {@link PoolingParams} asked)
 * @param promptTokenIds the tokens the model saw, after any truncation
 */
public record EmbeddingOutput(String requestId, float[] embedding, int[] promptTokenIds) {

    /** Cosine similarity with another output's embedding. */
    public double cosine(EmbeddingOutput other) {
        float[] a = embedding, b = other.embedding;
        if (a.length != b.length) {
            throw new IllegalArgumentException("embeddings of " + a.length + " and " + b.length + " dimensions");
        }
        double dot = 0, na = 0, nb = 0;
        for (int i = 0; i < a.length; i++) {
            dot += (double) a[i] * b[i];
            na += (double) a[i] * a[i];
            nb += (double) b[i] * b[i];
        }
        return dot / Math.sqrt(na * nb);
    }
}
