package dev.jvllm.weights;

import com.fasterxml.jackson.core.JacksonException;
import com.fasterxml.jackson.databind.JsonNode;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.InvalidPathException;
import java.nio.file.Path;
import java.util.Collections;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.Map;
import java.util.SequencedSet;

/**
 * A {@code model.safetensors.index.json}: which shard file holds each tensor. Every shard name is
 * checked before any shard is opened: it must be a plain relative path that stays inside the model
 * directory and names a regular file. Symbolic links are followed, because the Hugging Face cache
 * stores every snapshot file as a link into its blob folder; the name itself cannot escape.
 *
 * @param file      the index file, for messages
 * @param weightMap tensor name to the shard file that the index says holds it
 */
record SafetensorsIndex(Path file, Map<String, Path> weightMap) {

    static final String FILE_NAME = "model.safetensors.index.json";

    /** Reads and checks the index in {@code modelDirectory}. */
    static SafetensorsIndex read(Path modelDirectory) {
        Path file = modelDirectory.resolve(FILE_NAME);
        JsonNode weightMap = readJson(file).get("weight_map");
        if (weightMap == null || !weightMap.isObject()) {
            throw new WeightsException(file + ": 'weight_map' must be an object of tensor name to file name");
        }
        Map<String, Path> shardsByName = new HashMap<>();
        Map<String, Path> shardOfTensor = new LinkedHashMap<>();
        for (Map.Entry<String, JsonNode> entry : weightMap.properties()) {
            JsonNode shardName = entry.getValue();
            if (!shardName.isTextual()) {
                throw new WeightsException(file + ": tensor '" + entry.getKey() + "' must map to a file name");
            }
            Path shard = shardsByName.computeIfAbsent(shardName.textValue(),
                    name -> checkedShard(file, modelDirectory, name));
            shardOfTensor.put(entry.getKey(), shard);
        }
        return new SafetensorsIndex(file, Collections.unmodifiableMap(shardOfTensor));
    }

    /** The distinct shard files, in the order the index first names them. */
    SequencedSet<Path> shards() {
        return new LinkedHashSet<>(weightMap.values());
    }

    private static JsonNode readJson(Path file) {
        try {
            if (Files.size(file) > SafetensorsFile.MAX_HEADER_BYTES) {
                throw new WeightsException(file + ": larger than " + SafetensorsFile.MAX_HEADER_BYTES + " bytes");
            }
            JsonNode root = SafetensorsFile.STRICT_JSON.readTree(file.toFile());
            if (root == null || !root.isObject()) {
                throw new WeightsException(file + ": must be a JSON object");
            }
            return root;
        } catch (JacksonException e) {
            throw new WeightsException(file + ": not valid JSON" + SafetensorsFile.where(e) + ": "
                    + e.getOriginalMessage(), e);
        } catch (IOException e) {
            throw new WeightsException(file + ": cannot be read: " + e.getMessage(), e);
        }
    }

    private static Path checkedShard(Path indexFile, Path modelDirectory, String name) {
        // Refused by spelling first, so that no platform ever interprets them: parent references,
        // absolute, drive-letter (C:), UNC and backslash paths, alternate data streams (a:b).
        if (name.isEmpty() || name.contains("..") || name.startsWith("/") || name.contains("\\")
                || name.contains(":")) {
            throw badShard(indexFile, name, "is not a plain relative path");
        }
        Path shard;
        try {
            shard = modelDirectory.resolve(name).normalize();
        } catch (InvalidPathException e) {
            throw badShard(indexFile, name, "is not a valid path");
        }
        if (!shard.startsWith(modelDirectory.normalize())) {
            throw badShard(indexFile, name, "lies outside the model directory");
        }
        if (!Files.isRegularFile(shard)) {
            throw badShard(indexFile, name, Files.exists(shard) ? "is not a regular file" : "does not exist");
        }
        return shard;
    }

    private static WeightsException badShard(Path indexFile, String name, String problem) {
        return new WeightsException(indexFile + ": shard file name '" + name + "' " + problem);
    }
}
