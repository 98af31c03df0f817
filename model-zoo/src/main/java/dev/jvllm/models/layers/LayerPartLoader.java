package dev.jvllm.models.layers;

import dev.jvllm.spi.ModelContext;

/**
 * How a family builds one part of decoder layer {@code index} (its attention, its feed-forward
 * block) from the layer's checkpoint scope ({@code model.layers.<index>.}).
 */
@FunctionalInterface
public interface LayerPartLoader<T> {

    T load(ModelContext model, WeightScope layer, int index);
}
