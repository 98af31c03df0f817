package dev.jvllm;

/**
 * The token embeddings of one input ({@link LLM#embedTokens}): vLLM's {@code token_embed} pooling,
 * every token's final hidden state, as multi-vector retrieval (ColBERT-style late interaction) reads them.
 *
 * @param requestId      the id the input ran under
 * @param embeddings     one row a token, in the input's order (normalized and truncated as the {@link PoolingParams} asked)
 * @param promptTokenIds the tokens the model saw, after any truncation
 */
public record TokenEmbeddingsOutput(String requestId, float[][] embeddings, int[] promptTokenIds) {

    /**
     * ColBERT's late-interaction score of this output as the query against {@code document}: for each
     * query token the largest dot product with any document token, summed.
     */
    public double maxSim(TokenEmbeddingsOutput document) {
        double total = 0;
        for (float[] q : embeddings) {
            double best = Double.NEGATIVE_INFINITY;
            for (float[] d : document.embeddings()) {
                if (d.length != q.length) throw new IllegalArgumentException("token embeddings of " + q.length + " and " + d.length + " dimensions");
                double dot = 0;
                for (int i = 0; i < q.length; i++) dot += (double) q[i] * d[i];
                best = Math.max(best, dot);
            }
            total += best;
        }
        return total;
    }
}
