package dev.jvllm.models.vision;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.jvllm.ImageInput;
import dev.jvllm.config.ConfigException;
import dev.jvllm.config.ModelConfig;
import dev.jvllm.engine.ForwardBatch;
import dev.jvllm.engine.PromptImage;
import dev.jvllm.models.LlamaForCausalLM;
import dev.jvllm.models.MistralForCausalLM;
import dev.jvllm.models.Qwen2ForCausalLM;
import dev.jvllm.models.layers.Linear;
import dev.jvllm.models.layers.PreNormArchitecture;
import dev.jvllm.models.layers.PreNormDecoder;
import dev.jvllm.models.layers.Scratch;
import dev.jvllm.models.layers.WeightScope;
import dev.jvllm.spi.Activation;
import dev.jvllm.spi.Backend;
import dev.jvllm.spi.CausalLM;
import dev.jvllm.spi.KvCache;
import dev.jvllm.spi.KvCacheSpec;
import dev.jvllm.spi.ModelContext;
import dev.jvllm.spi.Tensor;
import dev.jvllm.spi.VisionLanguageModel;
import dev.jvllm.weights.WeightsException;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;
import java.util.function.Supplier;

/**
 * The LLaVA family's shape (arXiv:2304.08485, 2310.03744): an image becomes one or more square
 * tiles, a CLIP vision tower's hidden states at one layer (less the class token with strategy
 * "default") go through a two-layer projector, and the family arranges the tiles' features into
 * the rows that take the place of the prompt's image placeholders in a Llama, Mistral or Qwen2
 * language model. Features are computed in the step that first reaches an image's placeholders
 * and kept by the image's content hash ({@link ImageFeatureCache}).
 */
public abstract class LlavaStyleModel implements CausalLM, VisionLanguageModel {

    /** Language models whose config fields are Llama's, by {@code text_config.model_type}. */
    private static final Map<String, Supplier<PreNormArchitecture>> LANGUAGE_MODELS = Map.of(
            "llama", LlamaForCausalLM::new, "mistral", MistralForCausalLM::new, "qwen2", Qwen2ForCausalLM::new);

    protected final Backend backend;
    protected final ClipVisionTower tower;
    protected final ClipImageProcessor processor;
    protected final WeightScope root;
    /** The features a tile gives: the tower's states less the class token's where it is dropped. */
    protected final int tileTokens;
    protected final int hidden;
    private final Linear projectorIn;
    private final Linear projectorOut;
    private final Activation projectorActivation;
    /** The first tower state a tile's features take: 1 drops the class token. */
    private final int firstState;
    private final int imageTokenId;
    private final PreNormDecoder decoder;
    private final Scratch scratch;
    private ImageFeatureCache features;

    /**
     * @param strategies the {@code vision_feature_select_strategy} values the family serves
     */
    protected LlavaStyleModel(ModelContext context, List<String> strategies) {
        ModelConfig config = context.config();
        this.backend = context.backend();
        ModelConfig text = textConfig(config);
        ModelConfig vision = config.section("vision_config");
        JsonNode featureLayer = config.raw().path("vision_feature_layer");
        if (!featureLayer.isMissingNode() && !featureLayer.isInt()) {
            throw new ConfigException(config.source() + ": vision_feature_layer " + featureLayer
                    + " is not supported (one layer index; features concatenated from several layers are not)");
        }
        int depth = vision.intOr(12, "num_hidden_layers");
        int layer = featureLayer.asInt(-2);
        int layersRun = layer < 0 ? depth + 1 + layer : layer;
        String strategy = config.raw().path("vision_feature_select_strategy").asText("default");
        if (!strategies.contains(strategy)) {
            throw new ConfigException(config.source() + ": vision_feature_select_strategy '" + strategy
                    + "' is not supported (" + String.join(", ", strategies) + ")");
        }
        this.firstState = strategy.equals("default") ? 1 : 0;
        this.root = WeightScope.root(context.checkpoint(), backend);
        this.tower = new ClipVisionTower(vision, scopeHolding(root, "embeddings.patch_embedding.weight",
                "vision_tower.vision_model", "vision_tower", "model.vision_tower.vision_model", "model.vision_tower"), layersRun);
        this.tileTokens = tower.tokensPerImage() - firstState;
        this.processor = context.modelDirectory() == null ? ClipImageProcessor.forSquare(tower.imageSize())
                : ClipImageProcessor.load(context.modelDirectory());
        int outHeight, outWidth;
        try {
            outHeight = processor.outputHeight();
            outWidth = processor.outputWidth();
        } catch (IllegalStateException e) {
            throw new ConfigException(config.source() + ": the image processor's output size depends on the image (no center "
                    + "crop); the vision tower reads " + tower.imageSize() + " × " + tower.imageSize());
        }
        if (outHeight != tower.imageSize() || outWidth != tower.imageSize()) {
            throw new ConfigException(config.source() + ": the image processor gives " + outHeight + " × " + outWidth
                    + " pixels, the vision tower reads " + tower.imageSize() + " × " + tower.imageSize());
        }
        this.hidden = text.hiddenSize();
        boolean bias = config.bool("multimodal_projector_bias", true);
        WeightScope projector = scopeHolding(root, "linear_1.weight", "multi_modal_projector", "model.multi_modal_projector");
        this.projectorIn = Linear.load(projector, "linear_1", tower.hiddenSize(), hidden, bias);
        this.projectorOut = Linear.load(projector, "linear_2", hidden, hidden, bias);
        this.projectorActivation = Activation.fromConfig(config.raw().path("projector_hidden_act").asText("gelu"));
        this.imageTokenId = config.intOr(32000, "image_token_index", "image_token_id");
        if (imageTokenId < 0 || imageTokenId >= text.vocabSize()) {
            throw new ConfigException(config.source() + ": image_token_index " + imageTokenId + " is outside the vocabulary of "
                    + text.vocabSize());
        }
        String decoderPrefix = root.has("language_model.model.embed_tokens.weight") ? "language_model.model" : "model.language_model";
        String lmHead = root.has("language_model.lm_head.weight") ? "language_model.lm_head" : "lm_head";
        PreNormArchitecture languageModel = languageModel(text);
        var options = languageModel.optionsFor(text);
        this.decoder = new PreNormDecoder(new ModelContext(text, context.checkpoint(), backend, context.maxModelLen(),
                context.modelDirectory()), options, options.names().under(decoderPrefix, lmHead), true, this::placeImages);
        this.scratch = new Scratch(backend);
    }

    /** The pixel values of each tile the tower reads for the image, channel-major [3, side, side]. */
    protected abstract List<float[]> tiles(ImageInput image);

    /** The most placeholder positions any image takes (the feature buffers' rows). */
    protected abstract int maxImageTokens();

    /**
     * Writes the image's feature rows into {@code out} ([{@link #imageTokenCount}, hidden]) from
     * its tiles' projected features, {@code tileFeatures} ([tiles × {@link #tileTokens}, hidden],
     * tile after tile), whose one row past them is free for the family's use.
     */
    protected abstract void arrange(ImageInput image, Tensor tileFeatures, Tensor out);

    @Override
    public int imageTokenId() {
        return imageTokenId;
    }

    @Override
    public KvCacheSpec kvCacheSpec(int numBlocks, int blockSize) {
        return decoder.kvCacheSpec(numBlocks, blockSize);
    }

    @Override
    public int vocabSize() {
        return decoder.vocabSize();
    }

    @Override
    public Tensor forward(ForwardBatch batch, KvCache cache) {
        return decoder.forward(batch, cache);
    }

    /** Writes each image's features over its placeholders among the batch's tokens, encoding the images not kept. */
    private void placeImages(Backend backend, ForwardBatch batch, Tensor x) {
        if (batch.images() == null) return;
        if (features == null) {
            int rows = maxImageTokens();
            features = new ImageFeatureCache(backend, rows, hidden, Math.max(2, ImageFeatureCache.ROW_BUDGET / rows));
        }
        Map<String, ImageInput> wanted = new LinkedHashMap<>();
        for (List<PromptImage> images : batch.images()) {
            for (PromptImage image : images) wanted.putIfAbsent(image.image().contentHash(), image.image());
        }
        List<String> missing = wanted.keySet().stream().filter(hash -> !features.holds(hash)).toList();
        if (!missing.isEmpty()) {
            encode(missing, wanted);
        }
        for (int s = 0; s < batch.numSequences(); s++) {
            int first = batch.queryStarts()[s];
            int count = batch.queryLength(s);
            if (count == 0) continue;
            int firstPosition = batch.positions()[first];
            for (PromptImage image : batch.imagesOf(s)) {
                int from = Math.max(image.start(), firstPosition);
                int to = Math.min(image.end(), firstPosition + count);
                if (from >= to) continue;
                Tensor rows = features.get(image.image().contentHash()).rows(from - image.start(), to - from);
                backend.scale(rows, 1f, x.rows(first + from - firstPosition, to - from));
            }
        }
    }

    /** Runs the tower over every tile of the images, then projects and arranges each image's features into the cache. */
    private void encode(List<String> hashes, Map<String, ImageInput> images) {
        // Preprocessing is host work of a few milliseconds an image (Pillow's resampling): images side by side.
        List<List<float[]>> tilesOfEach = hashes.size() == 1 ? List.of(tiles(images.get(hashes.getFirst())))
                : hashes.parallelStream().map(hash -> tiles(images.get(hash))).toList();
        List<float[]> pixels = new ArrayList<>();
        int[] firstTile = new int[hashes.size() + 1];
        for (int i = 0; i < hashes.size(); i++) {
            pixels.addAll(tilesOfEach.get(i));
            firstTile[i + 1] = firstTile[i] + tilesOfEach.get(i).size();
        }
        Tensor states = tower.encode(pixels);
        int perTile = tower.tokensPerImage();
        for (int i = 0; i < hashes.size(); i++) {
            int tiles = firstTile[i + 1] - firstTile[i];
            Tensor projected = scratch.get("llava.projected", tiles * tileTokens + 1, hidden);
            Tensor inner = scratch.get("llava.inner", tileTokens, hidden);
            for (int t = 0; t < tiles; t++) {
                Tensor selected = states.rows((firstTile[i] + t) * perTile + firstState, tileTokens);
                projectorIn.applyActivated(backend, projectorActivation, selected, inner);
                projectorOut.apply(backend, inner, projected.rows(t * tileTokens, tileTokens));
            }
            ImageInput image = images.get(hashes.get(i));
            Tensor buffer = features.put(hashes.get(i), images.keySet());
            arrange(image, projected, buffer.rows(0, imageTokenCount(image)));
        }
    }

    /** The scope of the first prefix under which {@code probe} exists. */
    protected static WeightScope scopeHolding(WeightScope root, String probe, String... prefixes) {
        for (String prefix : prefixes) {
            WeightScope scope = root.child(prefix);
            if (scope.has(probe)) return scope;
        }
        throw new WeightsException("no tensor " + probe + " under any of " + List.of(prefixes) + " in the checkpoint");
    }

    /**
     * The {@code text_config} with the defaults of its family's Transformers config class filled in:
     * LLaVA-1.5's config.json states only what differs from them.
     */
    static ModelConfig textConfig(ModelConfig config) {
        ModelConfig text = config.section("text_config");
        String type = text.raw().path("model_type").asText("llama");
        ObjectNode filled = ((ObjectNode) text.raw()).deepCopy();
        Map<String, Number> defaults = switch (type) {
            case "mistral" -> Map.of("vocab_size", 32000, "hidden_size", 4096, "intermediate_size", 14336,
                    "num_hidden_layers", 32, "num_attention_heads", 32, "num_key_value_heads", 8,
                    "max_position_embeddings", 131072, "rms_norm_eps", 1e-6, "sliding_window", 4096);
            case "qwen2" -> Map.of("vocab_size", 151936, "hidden_size", 4096, "intermediate_size", 22016,
                    "num_hidden_layers", 32, "num_attention_heads", 32, "num_key_value_heads", 32,
                    "max_position_embeddings", 32768, "rms_norm_eps", 1e-6);
            default -> Map.of("vocab_size", 32000, "hidden_size", 4096, "intermediate_size", 11008,
                    "num_hidden_layers", 32, "num_attention_heads", 32, "max_position_embeddings", 2048,
                    "rms_norm_eps", 1e-6);
        };
        defaults.forEach((field, value) -> {
            if (!filled.has(field)) {
                if (value instanceof Integer i) filled.put(field, i);
                else filled.put(field, value.doubleValue());
            }
        });
        if (!filled.has("model_type")) filled.put("model_type", type);
        return ModelConfig.of(filled, text.source());
    }

    private static PreNormArchitecture languageModel(ModelConfig text) {
        String type = text.modelType();
        Supplier<PreNormArchitecture> family = LANGUAGE_MODELS.get(type);
        if (family == null) {
            throw new ConfigException(text.source() + ": model_type '" + type + "' is not supported as a LLaVA language model "
                    + "(supported: " + String.join(", ", new TreeSet<>(LANGUAGE_MODELS.keySet())) + ")");
        }
        return family.get();
    }
}
