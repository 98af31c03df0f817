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

    /** Llama-style SwiGLU {@code gate_proj, up_proj, down_proj} under {@code scope}. */
    public static GatedMlp load(WeightScope scope, int hidden, int intermediate, boolean bias) {
        return load(scope, hidden, intermediate, bias, Activation.SILU);
    }

    /** Llama-style {@code gate_proj, up_proj, down_proj} under {@code scope}. */
    public static GatedMlp load(WeightScope scope, int hidden, int intermediate, boolean bias, Activation activation) {
        return new GatedMlp(
                Linear.load(scope, "gate_proj", hidden, intermediate, bias),
                Linear.load(scope, "up_proj", hidden, intermediate, bias),
                Linear.load(scope, "down_proj", intermediate, hidden, bias),
                activation);
    }

    /** Phi-3's fused {@code gate_up_proj} (gate rows, then up rows) and {@code down_proj}, without biases. */
    public static GatedMlp loadFused(WeightScope scope, String fusedName, int hidden, int intermediate, Activation activation) {
        Linear[] gateUp = Linear.loadRowBlocks(scope, fusedName, hidden, intermediate, intermediate);
        return new GatedMlp(gateUp[0], gateUp[1], Linear.load(scope, "down_proj", intermediate, hidden, false), activation);
    }

    @Override
    public void forward(Backend backend, Tensor x, Scratch scratch, Tensor out) {
        int tokens = x.rows();
        Tensor g = scratch.get("mlp.gate", tokens, gate.outFeatures());
        Tensor u = scratch.get("mlp.up", tokens, up.outFeatures());
        gate.apply(backend, x, g);
        up.apply(backend, x, u);
        if (activation == Activation.SILU) {
            backend.siluMul(g, u, g);
        } else {
            backend.gatedActivation(activation, g, u, g);
        }
        down.apply(backend, g, out);
    }
}
