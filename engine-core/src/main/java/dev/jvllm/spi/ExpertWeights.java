package dev.jvllm.spi;

/**
 * The SwiGLU weights of a mixture's routed experts, gathered once at load by
 * {@link Backend#expertWeights} into whatever form the backend's grouped expert kernel reads (the
 * CPU backend keeps the tensors; the CUDA backend a device table of their addresses). Only the
 * backend that made it may use it.
 */
public interface ExpertWeights {

    /** The number of experts E. */
    int count();

    /** The model width H: each expert maps [H] → [H]. */
    int hidden();

    /** Each expert's intermediate width I. */
    int intermediate();
}
