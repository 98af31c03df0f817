package dev.jvllm;

/**
 * The score of one pair of texts from {@link LLM#score}: vLLM's {@code ScoringRequestOutput}. For an
 * embedding model, the cosine similarity of the two texts' embeddings; for a cross-encoder
 * ({@link Task#CLASSIFY}), the relevance of the pair read as one input.
 *
 * @param score        the cosine similarity, in [-1, 1]; or the cross-encoder's logit through its activation (a
 *                     sigmoid, in [0, 1], unless its sentence-transformers config names another: Identity gives the logit)
 * @param promptTokens the two texts' tokens together, as the model saw them
 */
public record ScoringOutput(double score, int promptTokens) {
}
