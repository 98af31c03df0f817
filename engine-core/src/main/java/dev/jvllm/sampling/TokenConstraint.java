package dev.jvllm.sampling;

/**
 * A rule on which tokens a sequence may draw next, that follows the tokens it draws (structured
 * outputs). Where it cannot go on, either method throws, out of {@link Sampler#sample}: the engine
 * then fails the sequence's request rather than let it draw unconstrained or end as if complete.
 */
public interface TokenConstraint {

    /** Sets the logits of the tokens not allowed next to -inf. */
    void mask(float[] logits);

    /** Follows a drawn token. */
    void advance(int tokenId);
}
