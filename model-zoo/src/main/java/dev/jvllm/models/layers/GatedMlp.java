package dev.jvllm.models.layers;

import dev.jvllm.spi.Backend;
import dev.jvllm.spi.Tensor;

/** SwiGLU feed-forward (arXiv:2002.05202): {@code down(silu(gate(x)) * up(x))}. */
public record GatedMlp(Linear gate, Linear up, Linear down) {

    /** Llama-style {@code gate_proj, up_proj, down_proj} under {@code scope}. */
    public static GatedMlp load(WeightScope scope, int hidden, int intermediate, boolean bias) {
        return new GatedMlp(
                Linear.load(scope, "gate_proj", hidden, intermediate, bias),
                Linear.load(scope, "up_proj", hidden, intermediate, bias),
                Linear.load(scope, "down_proj", intermediate, hidden, bias));
    }

    public void forward(Backend backend, Tensor x, Scratch scratch, Tensor out) {
        int tokens = x.rows();
        Tensor g = scratch.get("mlp.gate", tokens, gate.outFeatures());
        Tensor u = scratch.get("mlp.up", tokens, up.outFeatures());
        gate.apply(backend, x, g);
        up.apply(backend, x, u);
        backend.siluMul(g, u, g);
        down.apply(backend, g, out);
    }
}
