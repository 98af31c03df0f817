package dev.jvllm.spi;

import dev.jvllm.config.ModelConfig;
import dev.jvllm.weights.Checkpoint;

/** What a model class is built from: its configuration, its weights and the backend to run on. */
public record ModelContext(ModelConfig config, Checkpoint checkpoint, Backend backend) {
}
