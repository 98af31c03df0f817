package dev.jvllm.models.layers;

import dev.jvllm.spi.Activation;
import dev.jvllm.spi.Backend;
import dev.jvllm.spi.Tensor;

/**
 * Gated feed-forward {@code down(act(gate(x)) * up(x))} (arXiv:2002.05202): SwiGLU with SiLU,
 * GeGLU with GELU.
 */
public record GatedMlp(Linear gate, Linear up, Linear down, Activation activation) implements FeedForward {

    /** SwiGLU. */
    public GatedMlp(Linear gate, Linear up, Linear down) {
        this(gate, up, down, Activation.SILU);
    }

    @Override
    public void forward(Backend backend, Tensor x, Scratch scratch, Tensor out) {
        down.apply(backend, activatedHidden(backend, x, scratch), out);
    }

    /** With a plain down projection, the product, the residual add and the norm go to the backend together. */
    @Override
    public void forwardThenAddNorm(Backend backend, Tensor x, Scratch scratch, Tensor out, Tensor residual, Norm norm,
                                   Tensor normed) {
        if (!down.plain()) {
            FeedForward.super.forwardThenAddNorm(backend, x, scratch, out, residual, norm, normed);
            return;
        }
        norm.linearThenAddThenApply(backend, activatedHidden(backend, x, scratch), down.weight(), out, residual, normed);
    }

    /** act(gate(x)) * up(x), in scratch. */
    private Tensor activatedHidden(Backend backend, Tensor x, Scratch scratch) {
        int tokens = x.rows();
        Tensor g = scratch.get("mlp.gate", tokens, gate.outFeatures());
        Tensor u = scratch.get("mlp.up", tokens, up.outFeatures());
        if (gate.plain() && up.plain()) {
            backend.gatedLinear(activation, x, gate.weight(), up.weight(), u, g);
        } else {
            gate.apply(backend, x, g);
            up.apply(backend, x, u);
            if (activation == Activation.SILU) {
                backend.siluMul(g, u, g);
            } else {
                backend.gatedActivation(activation, g, u, g);
            }
        }
        return g;
    }
}
