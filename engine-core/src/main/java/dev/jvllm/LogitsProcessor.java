package dev.jvllm;

import java.util.List;

/**
 * A request's own change to the logits of each token it draws, as vLLM's per-request
 * {@code logits_processors}: called once a step for each of the request's sequences, before the
 * library's own masks (allowed tokens, structured outputs, bad words, min tokens), biases and
 * penalties, then temperature and truncation. Rows of several sequences may be processed at once
 * on different threads: a processor shared between them must be safe for that.
 *
 * <p>A processor that throws fails its own request with a {@link RequestFailedException} naming
 * what it threw; the other requests of the batch go on.
 */
@FunctionalInterface
public interface LogitsProcessor {

    /**
     * Changes {@code logits} in place (set a token's logit to {@code -Infinity} to forbid it).
     *
     * @param outputTokenIds the tokens this sequence has drawn so far (not the prompt); a read-only view
     *                       that grows as the sequence does: copy it to keep what it holds now
     * @param logits         the next token's logits, one per vocabulary id
     */
    void process(List<Integer> outputTokenIds, float[] logits);
}
