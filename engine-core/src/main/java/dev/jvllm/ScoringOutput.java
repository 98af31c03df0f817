package dev.jvllm;

/**
 * The score of one pair of texts from {@link LLM#score}: vLLM's {@code ScoringRequestOutput} for an
 * embedding model, the cosine similarity of the two texts' embeddings.
 *
 * @param score        the cosine similarity, in [-1, 1]
 * @param promptTokens the two texts' tokens together, as the model saw them
 */
public record ScoringOutput(double score, int promptTokens) {
}
