package dev.jvllm.config;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;

import java.util.Locale;

/**
 * Rotary position embedding settings, read from either spelling found in the wild: {@code rope_theta}
 * with {@code rope_scaling}, or Transformers 5's {@code rope_parameters}.
 *
 * @param theta                base of the frequencies
 * @param type                 "default", "linear", "dynamic", "llama3", "yarn", "longrope", ...
 * @param factor               scaling factor (1 when none)
 * @param originalMaxPositions the context length the model was trained at (for llama3/yarn/dynamic)
 * @param partialRotaryFactor  share of each head that is rotated (1 = all)
 * @param parameters           every field of the scaling object, for the type-specific ones
 */
public record RopeConfig(double theta, String type, double factor, int originalMaxPositions,
                         double partialRotaryFactor, JsonNode parameters) {

    /** Number of features of a head of {@code headDim} that are rotated (always even). */
    public int rotaryDim(int headDim) {
        int d = (int) (headDim * partialRotaryFactor);
        return d - (d % 2);
    }

    public double param(String name, double defaultValue) {
        JsonNode n = parameters.get(name);
        return n == null || n.isNull() ? defaultValue : n.asDouble();
    }

    static RopeConfig from(JsonNode config, int maxPositions) {
        JsonNode params = config.get("rope_parameters");
        if (params != null && params.isObject() && !params.has("rope_type") && !params.has("rope_theta")
                && params.has("full_attention")) {
            params = params.get("full_attention"); // per-layer-type parameters: the global layers' set
        }
        if (params == null || params.isNull()) {
            params = config.get("rope_scaling");
        }
        if (params == null || params.isNull()) {
            params = JsonNodeFactory.instance.objectNode();
        }
        if (!params.isObject()) {
            throw new ConfigException("config.json: 'rope_scaling'/'rope_parameters' must be an object, got " + params);
        }
        double theta = params.has("rope_theta") ? params.get("rope_theta").asDouble()
                : config.path("rope_theta").asDouble(10000.0);
        String type = params.has("rope_type") ? params.get("rope_type").asText()
                : params.path("type").asText("default");
        type = type.toLowerCase(Locale.ROOT);
        if (type.equals("su")) type = "longrope";
        double factor = params.path("factor").asDouble(1.0);
        int original = params.path("original_max_position_embeddings")
                .asInt(config.path("original_max_position_embeddings").asInt(maxPositions));
        double partial = params.has("partial_rotary_factor") ? params.get("partial_rotary_factor").asDouble()
                : config.path("partial_rotary_factor").asDouble(1.0);
        if (!(theta > 0) || !(factor > 0) || !(partial > 0 && partial <= 1)) {
            throw new ConfigException("config.json: rope settings out of range (theta=" + theta + ", factor="
                    + factor + ", partial_rotary_factor=" + partial + ")");
        }
        return new RopeConfig(theta, type, factor, original, partial, params);
    }
}
