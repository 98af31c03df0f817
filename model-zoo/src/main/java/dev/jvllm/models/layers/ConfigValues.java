package dev.jvllm.models.layers;

import com.fasterxml.jackson.databind.JsonNode;
import dev.jvllm.config.ConfigException;
import dev.jvllm.config.ModelConfig;

/**
 * Optional numeric features read as Transformers' config classes read them: a field absent from
 * config.json takes the class default, while an explicit {@code null} turns the feature off.
 */
public final class ConfigValues {

    private ConfigValues() {
    }

    /** The number in {@code field}; {@code classDefault} when absent; 0 (off) when null. */
    public static double numberOrOff(ModelConfig config, String field, double classDefault) {
        JsonNode value = config.raw().get(field);
        if (value == null) {
            return classDefault;
        }
        if (value.isNull()) {
            return 0;
        }
        if (!value.isNumber() || value.doubleValue() < 0) {
            throw new ConfigException(config.source() + ": field '" + field + "' must be a non-negative number or null, got " + value);
        }
        return value.doubleValue();
    }

    /** The positive integer in {@code field}, which {@code feature} needs; a ConfigException naming the field otherwise. */
    public static int positiveInt(ModelConfig config, String field, String feature) {
        int value = config.intOr(-1, field);
        if (value <= 0) {
            throw new ConfigException(config.source() + ": field '" + field + "' must be a positive integer for "
                    + feature + ", got " + config.raw().get(field));
        }
        return value;
    }
}
