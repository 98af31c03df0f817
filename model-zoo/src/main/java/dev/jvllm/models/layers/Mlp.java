package dev.jvllm.models.layers;

import dev.jvllm.spi.Activation;
import dev.jvllm.spi.Backend;
import dev.jvllm.spi.Tensor;

/** The original transformer feed-forward: {@code down(act(up(x)))}. */
public record Mlp(Linear up, Activation activation, Linear down) implements FeedForward {

    /** {@code <upName>} [intermediate, hidden] and {@code <downName>} [hidden, intermediate] under {@code scope}. */
    public static Mlp load(WeightScope scope, String upName, String downName, int hidden, int intermediate,
                           Activation activation, boolean bias) {
        return new Mlp(Linear.load(scope, upName, hidden, intermediate, bias), activation,
                Linear.load(scope, downName, intermediate, hidden, bias));
    }

    @Override
    public void forwardPlusResidual(Backend backend, Tensor x, Scratch scratch, Tensor residual, Tensor out) {
        Tensor h = scratch.get("mlp.up", x.rows(), up.outFeatures());
        up.applyActivated(backend, activation, x, h);
        down.applyPlusResidual(backend, h, residual, out);
    }

    @Override
    public void forward(Backend backend, Tensor x, Scratch scratch, Tensor out) {
        Tensor h = scratch.get("mlp.up", x.rows(), up.outFeatures());
        up.apply(backend, x, h);
        backend.activation(activation, h, h);
        down.apply(backend, h, out);
    }
}
