package dev.jvllm.config;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.StreamReadConstraints;
import com.fasterxml.jackson.databind.DeserializationFeature;
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
import java.util.OptionalDouble;
import java.util.OptionalInt;

/**
 * A Hugging Face {@code config.json}, with typed accessors for the fields every decoder shares
 * (each falling back to the other names families use) and {@link #raw()} for the rest.
 */
public final class ModelConfig {

    private static final long MAX_CONFIG_BYTES = 16L << 20;

    private static final ObjectMapper JSON = new ObjectMapper(JsonFactory.builder()
            .streamReadConstraints(StreamReadConstraints.builder().maxNestingDepth(64).maxStringLength(1 << 20).build())
            .build())
            .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS);

    private final JsonNode raw;
    private final String source;
    private final ConfigFields fields;

    private ModelConfig(JsonNode raw, String source) {
        this.raw = requireObject(raw, source);
        this.source = source;
        this.fields = new ConfigFields(raw, source);
    }

    /** Reads {@code config.json} of a model directory. */
    public static ModelConfig load(Path modelDirectory) {
        Path file = modelDirectory.resolve("config.json");
        return new ModelConfig(readJson(file), file.toString());
    }

    /** A config from JSON text (tests, tools). */
    public static ModelConfig parse(String json) {
        try {
            return new ModelConfig(JSON.readTree(json), "config.json");
        } catch (IOException e) {
            throw new ConfigException("config.json: not valid JSON: " + e.getMessage(), e);
        }
    }

    /** A config over a JSON object already read (a section of another config, with defaults filled in). */
    public static ModelConfig of(JsonNode raw, String source) {
        return new ModelConfig(raw, source);
    }

    /**
     * This config with {@code defaults} (integers, doubles, booleans or strings) for the fields it
     * leaves out, as a family's config class would take them; the fields it names are kept.
     */
    public ModelConfig withDefaults(java.util.Map<String, ?> defaults) {
        var filled = ((com.fasterxml.jackson.databind.node.ObjectNode) raw).deepCopy();
        defaults.forEach((field, value) -> {
            if (filled.has(field)) return;
            switch (value) {
                case Integer i -> filled.put(field, i);
                case Boolean b -> filled.put(field, b);
                case Number n -> filled.put(field, n.doubleValue());
                default -> filled.put(field, value.toString());
            }
        });
        return new ModelConfig(filled, source);
    }

    /**
     * The nested config object {@code field} (a vision-language model's {@code text_config} or
     * {@code vision_config}), an empty one where the field is absent.
     *
     * @throws ConfigException where the field is not an object
     */
    public ModelConfig section(String field) {
        JsonNode node = raw.get(field);
        if (node == null || node.isNull()) {
            return new ModelConfig(JSON.createObjectNode(), source + " " + field);
        }
        if (!node.isObject()) throw new ConfigException(source + ": '" + field + "' must be an object");
        return new ModelConfig(node, source + " " + field);
    }

    /** The JSON object in {@code file}. */
    static JsonNode readJson(Path file) {
        return requireObject(readJsonValue(file), file.toString());
    }

    /** Any JSON value in {@code file}, under the size and nesting limits of config files. */
    static JsonNode readJsonValue(Path file) {
        return readJsonValue(file, MAX_CONFIG_BYTES);
    }

    /**
     * The JSON object in another file of a model directory (preprocessor_config.json,
     * tokenizer_config.json), under config files' nesting and string limits and at most
     * {@code maxBytes}; null where the file is absent.
     *
     * @throws ConfigException naming the file where it is too large, not JSON, or not an object
     */
    public static JsonNode readOptionalJson(Path file, long maxBytes) {
        return Files.isRegularFile(file) ? requireObject(readJsonValue(file, maxBytes), file.toString()) : null;
    }

    private static JsonNode readJsonValue(Path file, long maxBytes) {
        try {
            if (Files.size(file) > maxBytes) {
                throw new ConfigException(file + ": larger than " + maxBytes + " bytes");
            }
            JsonNode json = JSON.readTree(file.toFile());
            if (json == null) throw new ConfigException(file + ": empty");
            return json;
        } catch (NoSuchFileException e) {
            throw new ConfigException(file + ": not found");
        } catch (IOException e) {
            throw new ConfigException(file + ": not valid JSON: " + e.getMessage(), e);
        }
    }

    private static JsonNode requireObject(JsonNode json, String source) {
        if (json == null || !json.isObject()) {
            throw new ConfigException(source + ": expected a JSON object");
        }
        return json;
    }

    public JsonNode raw() {
        return raw;
    }

    /** Where this config came from, for messages. */
    public String source() {
        return source;
    }

    ConfigFields fields() {
        return fields;
    }

    public List<String> architectures() {
        List<String> names = new ArrayList<>();
        raw.path("architectures").forEach(n -> names.add(n.asText()));
        return names;
    }

    public String modelType() {
        return fields.text("model_type").orElse("");
    }

    public int hiddenSize() {
        return requirePositive("hidden_size", "n_embd", "d_model");
    }

    public int intermediateSize() {
        return requirePositive("intermediate_size", "n_inner", "ffn_dim");
    }

    public int numLayers() {
        return requirePositive("num_hidden_layers", "n_layer", "num_layers");
    }

    public int numHeads() {
        return requirePositive("num_attention_heads", "n_head", "num_heads");
    }

    /** Key/value heads (grouped-query attention); as many as query heads when not given. */
    public int numKvHeads() {
        int heads = numHeads();
        int kvHeads = positive("num_key_value_heads", intOr(heads, "num_key_value_heads", "multi_query_group_num",
                "num_kv_heads"));
        if (heads % kvHeads != 0) {
            throw new ConfigException(source + ": num_attention_heads (" + heads
                    + ") must be a multiple of num_key_value_heads (" + kvHeads + ")");
        }
        return kvHeads;
    }

    /** Explicit {@code head_dim}, else hidden size over heads (which must divide it). */
    public int headDim() {
        OptionalInt explicit = fields.integer("head_dim");
        if (explicit.isPresent()) {
            return positive("head_dim", explicit.getAsInt());
        }
        int hidden = hiddenSize();
        int heads = numHeads();
        if (hidden % heads != 0) {
            throw new ConfigException(source + ": hidden_size (" + hidden + ") is not a multiple of "
                    + "num_attention_heads (" + heads + ") and no head_dim is given");
        }
        return hidden / heads;
    }

    public int vocabSize() {
        return requirePositive("vocab_size", "padded_vocab_size");
    }

    /** The longest sequence the model was trained for; a vision-language model's is its language model's ({@code text_config}). */
    public int maxPositionEmbeddings() {
        String[] names = {"max_position_embeddings", "n_positions", "max_sequence_length", "seq_length"};
        JsonNode text = raw.path("text_config");
        if (text.isObject() && java.util.Arrays.stream(names).noneMatch(raw::has)) {
            return new ModelConfig(text, source + " text_config").intOr(2048, names);
        }
        return intOr(2048, names);
    }

    public double rmsNormEps() {
        return doubleOr(1e-6, "rms_norm_eps", "layer_norm_epsilon", "layer_norm_eps", "layernorm_epsilon");
    }

    public boolean tieWordEmbeddings() {
        return raw.path("tie_word_embeddings").asBoolean(false);
    }

    public String hiddenAct() {
        return fields.text("hidden_act")
                .or(() -> fields.text("hidden_activation"))
                .or(() -> fields.text("activation_function"))
                .orElse("silu");
    }

    public RopeConfig rope() {
        return RopeConfig.from(fields, maxPositionEmbeddings());
    }

    /**
     * The rotary settings of the layers of {@code layerType} ("sliding_attention", "full_attention")
     * where {@code rope_parameters} holds one set a layer type (Gemma 3 in Transformers 5), else {@link #rope()}.
     */
    public RopeConfig rope(String layerType) {
        return RopeConfig.from(fields, maxPositionEmbeddings(), layerType);
    }

    /** {@code torch_dtype} or its newer name {@code dtype}. */
    public Optional<DType> dtype() {
        return fields.text("dtype").or(() -> fields.text("torch_dtype")).flatMap(DType::fromTorchName);
    }

    /**
     * Whether config.json asks for code from the model repository: an {@code auto_map}, or
     * {@code trust_remote_code: true}. jvllm never runs or fetches such code; it uses its own
     * implementation of the architecture, which callers may want to tell the user.
     */
    public boolean hasRemoteCode() {
        return fields.has("auto_map") || raw.path("trust_remote_code").asBoolean(false);
    }

    public boolean bool(String field, boolean defaultValue) {
        return raw.path(field).asBoolean(defaultValue);
    }

    /** The first of the named fields present, else the default. */
    public int intOr(int defaultValue, String... names) {
        for (String name : names) {
            OptionalInt value = fields.integer(name);
            if (value.isPresent()) {
                return value.getAsInt();
            }
        }
        return defaultValue;
    }

    /** The first of the named fields present, else the default. */
    public double doubleOr(double defaultValue, String... names) {
        for (String name : names) {
            OptionalDouble value = fields.number(name);
            if (value.isPresent()) {
                return value.getAsDouble();
            }
        }
        return defaultValue;
    }

    /** The first of the named fields present, which must be positive. */
    private int requirePositive(String... names) {
        for (String name : names) {
            OptionalInt value = fields.integer(name);
            if (value.isPresent()) {
                return positive(name, value.getAsInt());
            }
        }
        String others = names.length == 1 ? "" : " (nor " + String.join(", ", List.of(names).subList(1, names.length)) + ")";
        throw new ConfigException(source + ": required field '" + names[0] + "'" + others + " is missing");
    }

    private int positive(String name, int value) {
        if (value <= 0) {
            throw fields.invalid(name, "must be positive, got " + value);
        }
        return value;
    }

    @Override
    public String toString() {
        return "ModelConfig" + architectures() + " from " + source;
    }
}
