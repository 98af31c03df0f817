package dev.jvllm.models;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.jvllm.weights.Checkpoint;
import dev.jvllm.weights.WeightTensor;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.ValueLayout;
import java.net.URISyntaxException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

/**
 * A reference-pipeline case (tools/reference/make_goldens.py): a tiny random checkpoint and
 * Hugging Face's float32 logits at every prompt position plus its 16 greedy tokens.
 */
public record Golden(String name, Path directory, List<Prompt> prompts) {

    record Prompt(int[] tokenIds, int[] greedyTokenIds, float[][] logits) {
    }

    static Path root() {
        try {
            return Path.of(Golden.class.getResource("/goldens").toURI());
        } catch (URISyntaxException e) {
            throw new IllegalStateException(e);
        }
    }

    /** Every case whose name starts with {@code prefix}. */
    static Stream<Golden> cases(String prefix) {
        try (Stream<Path> dirs = Files.list(root())) {
            return dirs.filter(d -> d.getFileName().toString().startsWith(prefix)).sorted().map(Golden::load).toList().stream();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    static Golden load(Path dir) {
        try {
            JsonNode json = new ObjectMapper().readTree(dir.resolve("goldens.json").toFile());
            List<Prompt> prompts = new ArrayList<>();
            try (Checkpoint logits = Checkpoint.openFile(dir.resolve("logits.safetensors"))) {
                int i = 0;
                for (JsonNode p : json.get("prompts")) {
                    float[][] values = matrix(logits.get("prompt" + i++));
                    prompts.add(new Prompt(ints(p.get("prompt_token_ids")), ints(p.get("greedy_token_ids")), values));
                }
            }
            return new Golden(dir.getFileName().toString(), dir, prompts);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** A JSON array of whole numbers. */
    public static int[] ints(JsonNode array) {
        int[] out = new int[array.size()];
        for (int i = 0; i < out.length; i++) out[i] = array.get(i).asInt();
        return out;
    }

    /** A float32 [rows, cols] tensor of a reference file, row by row. */
    public static float[][] matrix(WeightTensor t) {
        int rows = (int) t.dim(0), cols = (int) t.dim(1);
        float[][] values = new float[rows][cols];
        for (int r = 0; r < rows; r++) {
            for (int c = 0; c < cols; c++) {
                values[r][c] = t.data().get(ValueLayout.JAVA_FLOAT_UNALIGNED, 4L * (r * (long) cols + c));
            }
        }
        return values;
    }

    @Override
    public String toString() {
        return name;
    }
}
