package dev.jvllm.models.layers;

import dev.jvllm.spi.Backend;
import dev.jvllm.spi.Tensor;

/** The position-wise MLP of a transformer block: [tokens, hidden] in, [tokens, hidden] out. */
public interface FeedForward {

    void forward(Backend backend, Tensor x, Scratch scratch, Tensor out);
}
