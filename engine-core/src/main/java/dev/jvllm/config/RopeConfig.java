package dev.jvllm.config;

import com.fasterxml.jackson.databind.JsonNode;

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

    /** A numeric field of the scaling object (such as llama3's {@code low_freq_factor}), else the default. */
    public double param(String name, double defaultValue) {
        JsonNode n = parameters.get(name);
        if (n == null || n.isNull()) {
            return defaultValue;
        }
        if (!n.isNumber()) {
            throw new ConfigException("rope parameter '" + name + "' must be a number, got " + n);
        }
        return n.doubleValue();
    }

    static RopeConfig from(ConfigFields config, int maxPositions) {
        return from(config, maxPositions, "full_attention");
    }

    /** The settings of the layers of {@code layerType} where rope_parameters holds one set a layer type. */
    static RopeConfig from(ConfigFields config, int maxPositions, String layerType) {
        ConfigFields params = config.object("rope_parameters").map(p -> layersOf(p, layerType))
                .or(() -> config.object("rope_scaling"))
                .orElseGet(() -> config.absent("rope_scaling"));
        // rope_theta, original_max_position_embeddings and partial_rotary_factor may sit at the top instead.
        ConfigFields thetaAt = params.has("rope_theta") ? params : config;
        ConfigFields originalAt = params.has("original_max_position_embeddings") ? params : config;
        ConfigFields partialAt = params.has("partial_rotary_factor") ? params : config;
        double theta = thetaAt.number("rope_theta").orElse(10000.0);
        String type = params.text("rope_type").or(() -> params.text("type")).orElse("default").toLowerCase(Locale.ROOT);
        if (type.equals("su")) {
            type = "longrope"; // its name before Transformers 4.43
        } else if (type.equals("mrope")) {
            type = "default"; // Qwen2-VL's sections (mrope_section) over default frequencies, as Transformers 5 saves it
        }
        int original = originalAt.integer("original_max_position_embeddings").orElse(maxPositions);
        // LongRoPE without a factor takes the context extension itself (Phi-3's configs name none).
        double factor = params.number("factor").orElse(type.equals("longrope") ? (double) maxPositions / original : 1.0);
        double partial = partialAt.number("partial_rotary_factor").orElse(1.0);
        if (!(theta > 0)) {
            throw thetaAt.invalid("rope_theta", "must be positive, got " + theta);
        }
        if (!(factor > 0)) {
            throw params.invalid("factor", "must be positive, got " + factor);
        }
        if (original <= 0) {
            throw originalAt.invalid("original_max_position_embeddings", "must be positive, got " + original);
        }
        if (!(partial > 0 && partial <= 1)) {
            throw partialAt.invalid("partial_rotary_factor", "must be in (0, 1], got " + partial);
        }
        return new RopeConfig(theta, type, factor, original, partial, params.node());
    }

    /** Of per-layer-type parameters ({@code {"full_attention": {...}, "sliding_attention": {...}}}), one type's set. */
    private static ConfigFields layersOf(ConfigFields params, String layerType) {
        if (params.has("rope_type") || params.has("rope_theta")) {
            return params;
        }
        return params.object(layerType).orElse(params);
    }
}
