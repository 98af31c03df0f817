package dev.jvllm.models.layers;

import dev.jvllm.spi.Backend;
import dev.jvllm.spi.Tensor;

/** The position-wise feed-forward half of a decoder layer ({@link Mlp}, or {@code GatedMlp::forward}). */
@FunctionalInterface
public interface FeedForward {

    void forward(Backend backend, Tensor x, Scratch scratch, Tensor out);
}
