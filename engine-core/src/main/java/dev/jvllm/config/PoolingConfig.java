package dev.jvllm.config;

import com.fasterxml.jackson.databind.JsonNode;
import dev.jvllm.pooling.PoolingType;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Optional;

/**
 * The pooling a checkpoint asks for, read as vLLM reads it: the sentence-transformers files
 * ({@code modules.json}, the Pooling module's {@code config.json}, a {@code Normalize} module)
 * when present, the architecture's default otherwise; and the Matryoshka dimensions config.json
 * declares ({@code is_matryoshka}, {@code matryoshka_dimensions}).
 *
 * @param type                 how token states become one vector
 * @param normalize            whether vectors are L2-normalized unless a request says otherwise
 * @param matryoshka           whether the model was trained for truncated outputs
 * @param matryoshkaDimensions the truncations it was trained for; empty: any
 * @param source               where the pooling came from, for logs
 */
public record PoolingConfig(PoolingType type, boolean normalize, boolean matryoshka,
                            List<Integer> matryoshkaDimensions, String source) {

    private static final String NORMALIZE_MODULE = "sentence_transformers.models.Normalize";
    private static final String POOLING_MODULE = "sentence_transformers.models.Pooling";

    public PoolingConfig {
        matryoshkaDimensions = List.copyOf(matryoshkaDimensions);
    }

    /**
     * Reads the pooling of a model directory.
     *
     * @param defaultType the architecture's pooling when there are no sentence-transformers files
     * @throws ConfigException when a file is malformed, names a module path outside the
     *                         directory, or asks for a pooling mode jvllm does not have
     */
    public static PoolingConfig load(Path modelDirectory, ModelConfig config, PoolingType defaultType) {
        boolean matryoshka = config.bool("is_matryoshka", false) || config.raw().has("matryoshka_dimensions");
        List<Integer> dims = new ArrayList<>();
        config.raw().path("matryoshka_dimensions").forEach(d -> dims.add(d.asInt()));
        Path modules = modelDirectory.resolve("modules.json");
        if (!Files.isRegularFile(modules)) {
            return new PoolingConfig(defaultType, true, matryoshka, dims, "architecture default (no modules.json)");
        }
        JsonNode list = ModelConfig.readJsonValue(modules);
        if (!list.isArray()) throw new ConfigException(modules + ": expected a JSON array of modules");
        PoolingType type = defaultType;
        String source = "architecture default (modules.json has no Pooling module)";
        boolean normalize = false;
        for (JsonNode module : list) {
            String kind = module.path("type").asText("");
            if (kind.equals(NORMALIZE_MODULE)) {
                normalize = true;
            } else if (kind.equals(POOLING_MODULE)) {
                Path file = modulePath(modelDirectory, modules, module.path("path").asText("")).resolve("config.json");
                type = poolingMode(ModelConfig.readJson(file), file);
                source = file.toString();
            }
        }
        return new PoolingConfig(type, normalize, matryoshka, dims, source);
    }

    private static Path modulePath(Path directory, Path modules, String path) {
        Path relative = Path.of(path);
        if (path.isEmpty() || relative.isAbsolute() || path.contains("..") || path.contains(":") || path.startsWith("\\")) {
            throw new ConfigException(modules + ": module path '" + path
                    + "' must be a plain directory name inside the model directory");
        }
        return directory.resolve(relative).normalize();
    }

    private static PoolingType poolingMode(JsonNode json, Path file) {
        List<PoolingType> modes = new ArrayList<>();
        List<String> unsupported = new ArrayList<>();
        json.properties().forEach(e -> {
            if (!e.getKey().startsWith("pooling_mode_") || !e.getValue().asBoolean(false)) return;
            switch (e.getKey().substring("pooling_mode_".length()).toLowerCase(Locale.ROOT)) {
                case "cls_token" -> modes.add(PoolingType.CLS);
                case "mean_tokens" -> modes.add(PoolingType.MEAN);
                case "lasttoken" -> modes.add(PoolingType.LAST);
                default -> unsupported.add(e.getKey());
            }
        });
        if (!unsupported.isEmpty() || modes.size() != 1) {
            throw new ConfigException(file + ": exactly one of pooling_mode_cls_token, pooling_mode_mean_tokens, "
                    + "pooling_mode_lasttoken must be true" + (unsupported.isEmpty() ? "" : "; unsupported: " + unsupported));
        }
        return modes.getFirst();
    }

    /** Why {@code dimensions} cannot be asked of this {@code hidden}-wide model; empty when it can. */
    public Optional<String> dimensionsError(int dimensions, int hidden) {
        if (!matryoshka) {
            return Optional.of("the model does not support Matryoshka representation (config.json has no "
                    + "is_matryoshka or matryoshka_dimensions), so dimensions cannot be set");
        }
        if (!matryoshkaDimensions.isEmpty() && !matryoshkaDimensions.contains(dimensions)) {
            return Optional.of("dimensions " + dimensions + " is not one of the model's matryoshka_dimensions "
                    + matryoshkaDimensions);
        }
        if (dimensions > hidden) {
            return Optional.of("dimensions " + dimensions + " exceeds the model's " + hidden + " dimensions");
        }
        return Optional.empty();
    }
}
