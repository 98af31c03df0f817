package dev.jvllm.sampling;

/** A rule on which tokens a sequence may draw next, that follows the tokens it draws (structured outputs). */
public interface TokenConstraint {

    /** Sets the logits of the tokens not allowed next to -inf. */
    void mask(float[] logits);

    /** Follows a drawn token. */
    void advance(int tokenId);
}
