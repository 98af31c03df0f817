package dev.jvllm.spi;

import dev.jvllm.config.ModelConfig;
import dev.jvllm.weights.Checkpoint;

import java.nio.file.Path;

/**
 * What a model class is built from.
 *
 * @param config         the model's config.json
 * @param checkpoint     its weights
 * @param backend        the kernels to run on
 * @param maxModelLen    the longest sequence (prompt + output) the engine will run, so position tables can be sized
 * @param modelDirectory the directory holding the model's files (its image processor's config, say), or null
 *                       where the model is built from a config and checkpoint alone
 */
public record ModelContext(ModelConfig config, Checkpoint checkpoint, Backend backend, int maxModelLen, Path modelDirectory) {

    /** A context with no model directory. */
    public ModelContext(ModelConfig config, Checkpoint checkpoint, Backend backend, int maxModelLen) {
        this(config, checkpoint, backend, maxModelLen, null);
    }
}
