package dev.jvllm.models;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.jvllm.weights.WeightValues;
import dev.jvllm.weights.Checkpoint;
import dev.jvllm.weights.DType;
import dev.jvllm.weights.SafetensorsTestWriter;
import dev.jvllm.weights.WeightTensor;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.function.Consumer;

/**
 * A golden case's checkpoint rewritten into another family's names and packing, as
 * tools/reference/cases/part_c.py rewrites it for the reference pipeline: what the Java loaders
 * read back must compute the golden's logits unchanged.
 */
final class RepackedGolden {

    private record Entry(long[] shape, float[] values) {
    }

    private final Golden source;
    private final Map<String, Entry> tensors = new LinkedHashMap<>();

    private RepackedGolden(Golden source) {
        this.source = source;
        try (Checkpoint checkpoint = Checkpoint.open(source.directory())) {
            for (String name : checkpoint.names().stream().sorted().toList()) {
                WeightTensor t = checkpoint.get(name);
                tensors.put(name, new Entry(t.shape(), WeightValues.floats(t)));
            }
        }
    }

    static RepackedGolden of(String goldenCase) {
        return new RepackedGolden(Golden.load(Golden.root().resolve(goldenCase)));
    }

    /** Every tensor whose name contains {@code from} renamed with {@code to} in its place. */
    RepackedGolden rename(String from, String to) {
        Map<String, Entry> renamed = new LinkedHashMap<>();
        tensors.forEach((name, entry) -> renamed.put(name.replace(from, to), entry));
        tensors.clear();
        tensors.putAll(renamed);
        return this;
    }

    /**
     * Each layer's {@code q_proj}, {@code k_proj} and {@code v_proj} under {@code attention} (weights
     * and biases) joined into {@code fused}: [q; k; v] when {@code kvHeads} is 0, else grouped per
     * key/value head as [kvHeads, queriesPerKv + 2, headDim] rows.
     */
    RepackedGolden packQkv(String attention, String fused, int kvHeads, int headDim) {
        for (String q : tensors.keySet().stream().filter(n -> n.contains(attention + ".q_proj.")).toList()) {
            Entry[] parts = {tensors.remove(q), tensors.remove(q.replace(".q_proj.", ".k_proj.")),
                    tensors.remove(q.replace(".q_proj.", ".v_proj."))};
            int cols = parts[0].shape().length == 1 ? 1 : (int) parts[0].shape()[1];
            int rows = 0;
            for (Entry part : parts) rows += (int) part.shape()[0];
            float[] packed = new float[rows * cols];
            int groups = kvHeads == 0 ? 1 : kvHeads;
            int at = 0;
            for (int g = 0; g < groups; g++) {
                for (Entry part : parts) {
                    int block = part.values().length / groups;
                    System.arraycopy(part.values(), g * block, packed, at, block);
                    at += block;
                }
            }
            long[] shape = parts[0].shape().length == 1 ? new long[]{rows} : new long[]{rows, cols};
            tensors.put(q.replace(attention + ".q_proj.", attention + "." + fused + "."), new Entry(shape, packed));
        }
        return this;
    }

    /** A copy of tensor {@code from} added as {@code to}. */
    RepackedGolden copy(String from, String to) {
        Entry entry = tensors.get(from);
        tensors.put(to, new Entry(entry.shape().clone(), entry.values().clone()));
        return this;
    }

    /** Tensor {@code name} left out. */
    RepackedGolden remove(String name) {
        tensors.remove(name);
        return this;
    }

    /** Row r of {@code name} multiplied by {@code factors[r]}. */
    RepackedGolden scaleRows(String name, float[] factors) {
        Entry entry = tensors.get(name);
        int cols = (int) entry.shape()[1];
        for (int r = 0; r < factors.length; r++) {
            for (int c = 0; c < cols; c++) entry.values()[r * cols + c] *= factors[r];
        }
        return this;
    }

    /** The values of {@code name}. */
    float[] values(String name) {
        return tensors.get(name).values();
    }

    /**
     * Writes the checkpoint and the source's config.json, its architectures set to {@code architecture}
     * and edited further by {@code edit}, into {@code directory}; the golden prompts and logits come along.
     */
    Golden write(Path directory, String architecture, Consumer<ObjectNode> edit) {
        try {
            Files.createDirectories(directory);
            SafetensorsTestWriter writer = new SafetensorsTestWriter();
            tensors.forEach((name, entry) -> writer.add(name, DType.F32, entry.shape(), floatBytes(entry.values())));
            writer.write(directory.resolve("model.safetensors"));
            ObjectMapper json = new ObjectMapper();
            ObjectNode config = (ObjectNode) json.readTree(source.directory().resolve("config.json").toFile());
            config.putArray("architectures").add(architecture);
            edit.accept(config);
            json.writeValue(directory.resolve("config.json").toFile(), config);
            return new Golden(source.name() + "-as-" + architecture, directory, source.prompts());
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private static byte[] floatBytes(float[] values) {
        double[] wide = new double[values.length];
        for (int i = 0; i < values.length; i++) wide[i] = values[i];
        return SafetensorsTestWriter.encode(DType.F32, wide);
    }
}
