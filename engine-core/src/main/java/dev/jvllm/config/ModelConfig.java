package dev.jvllm.config;

import com.fasterxml.jackson.core.StreamReadConstraints;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.jvllm.weights.DType;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * A Hugging Face {@code config.json}, with typed accessors for the fields every decoder shares
 * (each falling back to the other names families use) and {@link #raw()} for the rest.
 */
public final class ModelConfig {

    private static final long MAX_CONFIG_BYTES = 16L << 20;

    private final JsonNode raw;
    private final String source;

    private ModelConfig(JsonNode raw, String source) {
        if (!raw.isObject()) {
            throw new ConfigException(source + ": expected a JSON object");
        }
        this.raw = raw;
        this.source = source;
    }

    /** Reads {@code config.json} of a model directory. */
    public static ModelConfig load(Path modelDirectory) {
        Path file = modelDirectory.resolve("config.json");
        return new ModelConfig(readJson(file), file.toString());
    }

    /** A config from JSON text (tests, tools). */
    public static ModelConfig parse(String json) {
        try {
            return new ModelConfig(mapper().readTree(json), "config.json");
        } catch (IOException e) {
            throw new ConfigException("config.json: not valid JSON: " + e.getMessage(), e);
        }
    }

    static ObjectMapper mapper() {
        ObjectMapper m = new ObjectMapper();
        m.getFactory().setStreamReadConstraints(StreamReadConstraints.builder()
                .maxNestingDepth(64).maxStringLength(1 << 20).build());
        return m;
    }

    static JsonNode readJson(Path file) {
        try {
            if (Files.size(file) > MAX_CONFIG_BYTES) {
                throw new ConfigException(file + ": larger than " + MAX_CONFIG_BYTES + " bytes");
            }
            return mapper().readTree(file.toFile());
        } catch (NoSuchFileException e) {
            throw new ConfigException(file + ": not found");
        } catch (IOException e) {
            throw new ConfigException(file + ": not valid JSON: " + e.getMessage(), e);
        }
    }

    public JsonNode raw() {
        return raw;
    }

    /** Where this config came from, for messages. */
    public String source() {
        return source;
    }

    public List<String> architectures() {
        List<String> names = new ArrayList<>();
        raw.path("architectures").forEach(n -> names.add(n.asText()));
        return names;
    }

    public String modelType() {
        return raw.path("model_type").asText("");
    }

    public int hiddenSize() {
        return requireInt("hidden_size", "n_embd", "d_model");
    }

    public int intermediateSize() {
        return requireInt("intermediate_size", "n_inner", "ffn_dim");
    }

    public int numLayers() {
        return requireInt("num_hidden_layers", "n_layer", "num_layers");
    }

    public int numHeads() {
        return requireInt("num_attention_heads", "n_head", "num_heads");
    }

    public int numKvHeads() {
        return intOr(numHeads(), "num_key_value_heads", "multi_query_group_num", "num_kv_heads");
    }

    /** Explicit {@code head_dim}, else hidden size over heads. */
    public int headDim() {
        JsonNode n = raw.get("head_dim");
        return n != null && !n.isNull() ? positive("head_dim", n.asInt()) : hiddenSize() / numHeads();
    }

    public int vocabSize() {
        return requireInt("vocab_size", "padded_vocab_size");
    }

    public int maxPositionEmbeddings() {
        return intOr(2048, "max_position_embeddings", "n_positions", "max_sequence_length", "seq_length");
    }

    public double rmsNormEps() {
        return doubleOr(1e-6, "rms_norm_eps", "layer_norm_epsilon", "layer_norm_eps", "layernorm_epsilon");
    }

    public boolean tieWordEmbeddings() {
        return raw.path("tie_word_embeddings").asBoolean(false);
    }

    public String hiddenAct() {
        return raw.has("hidden_act") ? raw.get("hidden_act").asText() : raw.path("activation_function").asText("silu");
    }

    public RopeConfig rope() {
        return RopeConfig.from(raw, maxPositionEmbeddings());
    }

    /** {@code torch_dtype} or its newer name {@code dtype}. */
    public Optional<DType> dtype() {
        JsonNode n = raw.has("dtype") && !raw.get("dtype").isNull() ? raw.get("dtype") : raw.get("torch_dtype");
        return n == null || n.isNull() ? Optional.empty() : DType.fromTorchName(n.asText());
    }

    public boolean bool(String field, boolean defaultValue) {
        return raw.path(field).asBoolean(defaultValue);
    }

    /** The first of the named fields present, else the default. */
    public int intOr(int defaultValue, String... names) {
        for (String name : names) {
            JsonNode n = raw.get(name);
            if (n != null && !n.isNull()) {
                if (!n.canConvertToInt()) {
                    throw new ConfigException(source + ": field '" + name + "' must be an integer, got " + n);
                }
                return n.asInt();
            }
        }
        return defaultValue;
    }

    public double doubleOr(double defaultValue, String... names) {
        for (String name : names) {
            JsonNode n = raw.get(name);
            if (n != null && !n.isNull()) {
                if (!n.isNumber()) {
                    throw new ConfigException(source + ": field '" + name + "' must be a number, got " + n);
                }
                return n.asDouble();
            }
        }
        return defaultValue;
    }

    private int requireInt(String... names) {
        int v = intOr(Integer.MIN_VALUE, names);
        if (v == Integer.MIN_VALUE) {
            throw new ConfigException(source + ": required field '" + names[0] + "' is missing");
        }
        return positive(names[0], v);
    }

    private int positive(String name, int v) {
        if (v <= 0) {
            throw new ConfigException(source + ": field '" + name + "' must be positive, got " + v);
        }
        return v;
    }

    @Override
    public String toString() {
        return "ModelConfig" + architectures() + " from " + source;
    }
}
