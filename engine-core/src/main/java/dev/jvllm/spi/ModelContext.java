package dev.jvllm.spi;

import dev.jvllm.config.ModelConfig;
import dev.jvllm.weights.Checkpoint;

/**
 * What a model class is built from.
 *
 * @param config      the model's config.json
 * @param checkpoint  its weights
 * @param backend     the kernels to run on
 * @param maxModelLen the longest sequence (prompt + output) the engine will run, so position tables can be sized
 */
public record ModelContext(ModelConfig config, Checkpoint checkpoint, Backend backend, int maxModelLen) {
}
