package dev.jvllm.weights;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.function.Function;

/**
 * The safetensors checkpoint of a model directory: {@code model.safetensors}, else the shards of
 * {@code model.safetensors.index.json}, else the directory's only {@code *.safetensors} file. All
 * files are mapped into one shared arena, so tensors may be read from any thread until {@link #close()}.
 */
final class SafetensorsCheckpoint implements Checkpoint {

    static final String SINGLE_FILE = "model.safetensors";

    private final Path directory;
    private final Arena arena;
    private final Map<String, WeightTensor> tensors;

    private SafetensorsCheckpoint(Path directory, Arena arena, Map<String, WeightTensor> tensors) {
        this.directory = directory;
        this.arena = arena;
        this.tensors = tensors;
    }

    static Checkpoint open(Path directory) {
        if (!Files.isDirectory(directory)) {
            throw new WeightsException(directory + ": not a directory");
        }
        Path single = directory.resolve(SINGLE_FILE);
        if (Files.exists(single)) {
            return mapped(directory, arena -> SafetensorsFile.map(single, arena));
        }
        if (Files.exists(directory.resolve(SafetensorsIndex.FILE_NAME))) {
            // Read, and every shard name checked, before any shard is opened.
            SafetensorsIndex index = SafetensorsIndex.read(directory);
            return mapped(directory, arena -> loadShards(index, arena));
        }
        Path only = onlySafetensorsFile(directory);
        return mapped(directory, arena -> SafetensorsFile.map(only, arena));
    }

    static Checkpoint openFile(Path file) {
        return mapped(file.toAbsolutePath().getParent(), arena -> SafetensorsFile.map(file, arena));
    }

    private static Checkpoint mapped(Path directory, Function<Arena, Map<String, WeightTensor>> loader) {
        Arena arena = Arena.ofShared();
        try {
            return new SafetensorsCheckpoint(directory, arena, loader.apply(arena));
        } catch (Throwable e) {
            arena.close();
            throw e;
        }
    }

    private static Path onlySafetensorsFile(Path directory) {
        List<Path> found = new ArrayList<>();
        try (DirectoryStream<Path> files = Files.newDirectoryStream(directory, "*.safetensors")) {
            files.forEach(found::add);
            found.sort(null);
        } catch (IOException e) {
            throw new WeightsException(directory + ": cannot be listed: " + e.getMessage(), e);
        }
        if (found.size() != 1) {
            throw new WeightsException(directory + ": no " + SINGLE_FILE + " or " + SafetensorsIndex.FILE_NAME
                    + (found.isEmpty() ? ", and no other *.safetensors file"
                    : ", and several *.safetensors files, so which one is meant is unclear: " + found));
        }
        return found.getFirst();
    }

    /** Maps every shard, then checks that the shards hold exactly the tensors the index says, each once. */
    private static Map<String, WeightTensor> loadShards(SafetensorsIndex index, Arena arena) {
        Map<String, WeightTensor> tensors = new LinkedHashMap<>();
        for (Path shard : index.shards()) {
            for (WeightTensor tensor : SafetensorsFile.map(shard, arena).values()) {
                WeightTensor earlier = tensors.putIfAbsent(tensor.name(), tensor);
                if (earlier != null) {
                    throw new WeightsException("tensor '" + tensor.name() + "' is present in both " + earlier.file()
                            + " and " + shard);
                }
                Path listed = index.weightMap().get(tensor.name());
                if (!shard.equals(listed)) {
                    throw new WeightsException(shard + ": tensor '" + tensor.name() + "' is "
                            + (listed == null ? "not listed in " + index.file()
                            : "listed in " + index.file() + " as being in " + listed));
                }
            }
        }
        for (Map.Entry<String, Path> listed : index.weightMap().entrySet()) {
            if (!tensors.containsKey(listed.getKey())) {
                throw new WeightsException(index.file() + ": tensor '" + listed.getKey() + "' is listed in "
                        + listed.getValue() + ", which does not contain it");
            }
        }
        return Collections.unmodifiableMap(tensors);
    }

    @Override
    public Set<String> names() {
        return tensors.keySet();
    }

    @Override
    public Optional<WeightTensor> find(String name) {
        return Optional.ofNullable(tensors.get(name));
    }

    @Override
    public WeightTensor get(String name) {
        WeightTensor tensor = tensors.get(name);
        if (tensor == null) {
            throw new WeightsException("tensor '" + name + "' not found in the checkpoint at " + directory);
        }
        return tensor;
    }

    /** Unmaps every file; tensor data read afterwards fails with {@link IllegalStateException}. */
    @Override
    public void close() {
        if (arena.scope().isAlive()) {
            arena.close();
        }
    }

    @Override
    public String toString() {
        return "SafetensorsCheckpoint(" + tensors.size() + " tensors in " + directory + ")";
    }
}
