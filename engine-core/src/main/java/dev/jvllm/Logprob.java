package dev.jvllm;

/**
 * The log-probability of one token at one position, as the model gave it.
 *
 * @param logprob      natural-log probability from the log-softmax of the model's raw logits
 * @param rank         1 for the most likely token; a token's rank counts every token at least as
 *                     likely as itself, as vLLM does
 * @param decodedToken the token's text, or {@code null} until the engine decodes it
 */
public record Logprob(float logprob, int rank, String decodedToken) {

    /** This logprob with its token's text filled in. */
    public Logprob withDecodedToken(String text) {
        return new Logprob(logprob, rank, text);
    }
}
