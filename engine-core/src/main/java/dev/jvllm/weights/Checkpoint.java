package dev.jvllm.weights;

import java.nio.file.Path;
import java.util.Optional;
import java.util.Set;

/**
 * The tensors of a model directory (one safetensors file or a sharded set), memory-mapped and
 * validated when opened. Closing unmaps everything.
 */
public interface Checkpoint extends AutoCloseable {

    /**
     * Opens {@code model.safetensors}, else the shards listed in {@code model.safetensors.index.json},
     * else the only {@code *.safetensors} file of a directory, validating every file.
     *
     * @throws WeightsException naming the file (and tensor) that is missing, malformed or inconsistent
     */
    static Checkpoint open(Path modelDirectory) {
        return SafetensorsCheckpoint.open(modelDirectory);
    }

    /** Opens one safetensors file (validated like a checkpoint's). */
    static Checkpoint openFile(Path file) {
        return SafetensorsCheckpoint.openFile(file);
    }

    Set<String> names();

    Optional<WeightTensor> find(String name);

    /** The tensor, or a {@link WeightsException} naming it and the checkpoint. */
    WeightTensor get(String name);

    @Override
    void close();
}
