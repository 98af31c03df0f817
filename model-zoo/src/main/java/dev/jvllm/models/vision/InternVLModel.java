package dev.jvllm.models.vision;

import com.fasterxml.jackson.databind.JsonNode;
import dev.jvllm.ImageInput;
import dev.jvllm.config.ConfigException;
import dev.jvllm.config.ModelConfig;
import dev.jvllm.models.layers.LayerNorm;
import dev.jvllm.models.layers.Linear;
import dev.jvllm.models.layers.Scratch;
import dev.jvllm.models.layers.WeightScope;
import dev.jvllm.spi.Activation;
import dev.jvllm.spi.ModelContext;
import dev.jvllm.spi.Tensor;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.OptionalInt;

/**
 * InternVL (arXiv:2404.16821): an image cut into up to {@code max_patches} tiles of the tower's
 * size by its aspect ratio, plus a thumbnail ({@link DynamicTiling}); the InternViT tower's last
 * states less the class token pixel-shuffled (each 2 × 2 patches into one row of 4× the width),
 * then a LayerNorm and a two-layer projector give each tile its rows in the language model. An
 * image's placeholders ({@code <IMG_CONTEXT>}) sit between {@code <img>} and {@code </img>}, which
 * the engine adds where the prompt lacks them. Checkpoints in Transformers' format and in
 * InternVL's own ({@link Format}) differ in names and config fields only.
 */
public final class InternVLModel extends VisionLanguageDecoder<List<float[]>> {


    private final InternVisionTower tower;
    private final DynamicTiling tiling;
    private final ClipImageProcessor processor;
    private final int tileTokens;
    private final LayerNorm projectorNorm;
    private final Linear projectorIn;
    private final Linear projectorOut;
    private final Activation projectorActivation;
    private final Scratch scratch;

    /** Where a checkpoint's parts and settings are, by its format. */
    public enum Format {
        /** Transformers' {@code InternVLForConditionalGeneration}: text_config, preprocessor_config.json. */
        TRANSFORMERS("text_config", "vision_feature_layer", InternVisionTower.Names.TRANSFORMERS,
                List.of("vision_tower", "model.vision_tower"), List.of("multi_modal_projector", "model.multi_modal_projector"),
                "layer_norm", "linear_1", "linear_2"),
        /** InternVL's own {@code InternVLChatModel} (remote code): llm_config, the tiling in config.json, mlp1. */
        INTERNVL("llm_config", "select_layer", InternVisionTower.Names.INTERNVL, List.of("vision_model"), List.of("mlp1"),
                "0", "1", "3");

        private final String textSection;
        private final String featureLayerField;
        private final InternVisionTower.Names towerNames;
        private final List<String> towerScopes;
        private final List<String> projectorScopes;
        private final String projectorNorm;
        private final String projectorIn;
        private final String projectorOut;

        Format(String textSection, String featureLayerField, InternVisionTower.Names towerNames, List<String> towerScopes,
               List<String> projectorScopes, String projectorNorm, String projectorIn, String projectorOut) {
            this.textSection = textSection;
            this.featureLayerField = featureLayerField;
            this.towerNames = towerNames;
            this.towerScopes = towerScopes;
            this.projectorScopes = projectorScopes;
            this.projectorNorm = projectorNorm;
            this.projectorIn = projectorIn;
            this.projectorOut = projectorOut;
        }
    }

    /** InternVL's pixel shuffle before its "v2" (the default of its own config class) leaves the rows column by column. */
    private final boolean columnMajorShuffle;

    public InternVLModel(ModelContext context, Format format) {
        this(context, format, context.modelDirectory() == null ? Map.of() : addedTokens(context.modelDirectory()));
    }

    /** @param added the tokenizer files' added tokens, by text */
    private InternVLModel(ModelContext context, Format format, Map<String, Integer> added) {
        super(context, textConfig(context.config(), format.textSection), imageToken(context.config(), format, added),
                added.getOrDefault("<img>", -1), added.getOrDefault("</img>", -1), "<IMG_CONTEXT>");
        ModelConfig config = context.config();
        ModelConfig vision = config.section("vision_config");
        JsonNode featureLayer = config.raw().path(format.featureLayerField);
        if (!featureLayer.isMissingNode() && !featureLayer.isInt()) {
            throw new ConfigException(config.source() + ": " + format.featureLayerField + " " + featureLayer
                    + " is not supported (one layer index; features concatenated from several layers are not)");
        }
        String strategy = config.raw().path("vision_feature_select_strategy").asText("default");
        if (!strategy.equals("default")) {
            throw new ConfigException(config.source() + ": vision_feature_select_strategy '" + strategy
                    + "' is not supported (default: the class token dropped before the pixel shuffle)");
        }
        double ratio = config.doubleOr(0.5, "downsample_ratio");
        if (ratio != 0.5) {
            throw new ConfigException(config.source() + ": downsample_ratio " + ratio + " is not supported (0.5)");
        }
        String shuffle = format == Format.INTERNVL ? config.raw().path("ps_version").asText("v1") : "v2";
        if (!shuffle.equals("v1") && !shuffle.equals("v2")) {
            throw new ConfigException(config.source() + ": ps_version '" + shuffle + "' is not supported (v1, v2)");
        }
        this.columnMajorShuffle = shuffle.equals("v1");
        int depth = vision.intOr(24, "num_hidden_layers");
        int layer = featureLayer.asInt(-1);
        this.tower = new InternVisionTower(vision, scopeHolding(root, format.towerNames.classToken(),
                format.towerScopes.toArray(String[]::new)), layer < 0 ? depth + 1 + layer : layer, format.towerNames);
        int side = tower.gridSide();
        if (side % 2 != 0) {
            throw new ConfigException(config.source() + ": the tower's " + side + " × " + side
                    + " patches cannot be pixel-shuffled in 2 × 2 groups");
        }
        this.tileTokens = side * side / 4;
        int wide = 4 * tower.hiddenSize();
        WeightScope projector = scopeHolding(root, format.projectorNorm + ".weight", format.projectorScopes.toArray(String[]::new));
        this.projectorNorm = LayerNorm.load(projector, format.projectorNorm, wide, 1e-5);
        this.projectorIn = Linear.load(projector, format.projectorIn, wide, hidden, true);
        this.projectorOut = Linear.load(projector, format.projectorOut, hidden, hidden, true);
        this.projectorActivation = Activation.fromConfig(config.raw().path("projector_hidden_act").asText("gelu"));
        Path directory = context.modelDirectory();
        if (format == Format.INTERNVL) {
            this.tiling = ownTiling(config, tower.imageSize());
            this.processor = processor(null, tower.imageSize(), config.source());
        } else {
            JsonNode preprocessor = directory == null ? null : jsonFile(directory.resolve(ClipImageProcessor.CONFIG_FILE));
            this.tiling = tiling(preprocessor, tower.imageSize(), config.source());
            this.processor = processor(preprocessor, tower.imageSize(), config.source());
        }
        if (imageStartTokenId() < 0 || imageEndTokenId() < 0) {
            org.slf4j.LoggerFactory.getLogger(InternVLModel.class).warn(
                    "{}: the tokenizer files name no <img> and </img> tokens; prompts must hold them around each image's "
                            + "placeholders", config.source());
        }
        this.scratch = new Scratch(backend);
    }

    /** The placeholder: config.json's image_token_id, or in InternVL's own format the tokenizer's {@code <IMG_CONTEXT>}. */
    private static int imageToken(ModelConfig config, Format format, Map<String, Integer> added) {
        if (format == Format.TRANSFORMERS) return config.intOr(151667, "image_token_id", "image_token_index");
        Integer id = added.get("<IMG_CONTEXT>");
        if (id == null) {
            throw new ConfigException(config.source() + ": InternVL's image placeholder <IMG_CONTEXT> is not among the "
                    + "tokenizer's added tokens (tokenizer_config.json's added_tokens_decoder or tokenizer.json's added_tokens)");
        }
        return id;
    }

    /** InternVL's own config fields: dynamic_image_size, min/max_dynamic_patch, use_thumbnail, force_image_size. */
    private static DynamicTiling ownTiling(ModelConfig config, int tile) {
        int forced = config.intOr(tile, "force_image_size");
        if (forced != tile) {
            throw new ConfigException(config.source() + ": force_image_size " + forced + " differs from the tower's " + tile);
        }
        if (!config.bool("dynamic_image_size", false)) return new DynamicTiling(tile, 1, 1, false);
        int min = config.intOr(1, "min_dynamic_patch"), max = config.intOr(12, "max_dynamic_patch");
        if (min < 1 || max < min || max > 64) {
            throw new ConfigException(config.source() + ": min_dynamic_patch " + min + " and max_dynamic_patch " + max
                    + " must satisfy 1 <= min <= max <= 64");
        }
        return new DynamicTiling(tile, min, max, config.bool("use_thumbnail", false));
    }

    @Override
    public int imageTokenCount(ImageInput image) {
        return tileTokens * tiling.tileCount(image.width(), image.height());
    }

    @Override
    public void checkImage(ImageInput image) {
        tiling.check(image, processor);
    }

    @Override
    protected int maxImageTokens() {
        return tileTokens * tiling.maxTileCount();
    }

    @Override
    protected int towerCost(ImageInput image) {
        return tiling.tileCount(image.width(), image.height());
    }

    @Override
    protected int passBudget() {
        return Math.max(tiling.maxTileCount(), TOWER_TOKENS_A_PASS / tower.tokensPerImage());
    }

    /** A row of the most tiles: its aspect ratio matches that grid alone. */
    @Override
    protected ImageInput largestImage() {
        return blankImage(tiling.maxTiles() * tiling.tile(), tiling.tile());
    }

    @Override
    protected void encodeTogether(List<ImageInput> images, List<Tensor> outs) {
        List<List<float[]>> tilesOfEach = towerInputs(images);
        List<float[]> pixels = new ArrayList<>();
        for (List<float[]> tiles : tilesOfEach) pixels.addAll(tiles);
        Tensor states = tower.encode(pixels);
        int tiles = pixels.size();
        int side = tower.gridSide(), half = side / 2, perTile = tower.tokensPerImage();
        // The pixel shuffle: row (y, x) of a tile's output is the states of patches (2y, 2x),
        // (2y, 2x + 1), (2y + 1, 2x) and (2y + 1, 2x + 1) side by side (the class token dropped);
        // rows in row-major order of (y, x), or with "v1" column-major.
        int[] order = new int[tiles * 4 * tileTokens];
        int at = 0;
        for (int t = 0; t < tiles; t++) {
            for (int outer = 0; outer < half; outer++) {
                for (int inner = 0; inner < half; inner++) {
                    int y = columnMajorShuffle ? inner : outer, x = columnMajorShuffle ? outer : inner;
                    for (int dy = 0; dy < 2; dy++) {
                        for (int dx = 0; dx < 2; dx++) {
                            order[at++] = t * perTile + 1 + (2 * y + dy) * side + 2 * x + dx;
                        }
                    }
                }
            }
        }
        int rows = tiles * tileTokens, wide = 4 * tower.hiddenSize();
        Tensor shuffled = scratch.get("internvl.shuffled", tiles * 4 * tileTokens, tower.hiddenSize());
        backend.gatherRows(states, backend.indices(order), shuffled);
        Tensor normed = scratch.get("internvl.normed", rows, wide);
        projectorNorm.apply(backend, shuffled.reshape(rows, wide), normed);
        Tensor inner = scratch.get("internvl.inner", rows, hidden);
        projectorIn.applyActivated(backend, projectorActivation, normed, inner);
        int first = 0;
        for (int i = 0; i < images.size(); i++) {
            int count = tilesOfEach.get(i).size() * tileTokens;
            projectorOut.apply(backend, inner.rows(first, count), outs.get(i));
            first += count;
        }
    }

    @Override
    protected List<float[]> towerInput(ImageInput image) {
        return tiles(image);
    }

    private List<float[]> tiles(ImageInput image) {
        return tiling.tiles(image, processor).stream().map(processor::pixels).toList();
    }

    private static DynamicTiling tiling(JsonNode preprocessor, int tile, String source) {
        if (preprocessor == null) return new DynamicTiling(tile, 1, 12, true);
        int size = sideOf(preprocessor, tile, source);
        if (size != tile) {
            throw new ConfigException(source + ": the image processor makes tiles of " + size + " pixels, the vision tower "
                    + "reads " + tile);
        }
        if (!preprocessor.path("crop_to_patches").asBoolean(true)) {
            return new DynamicTiling(tile, 1, 1, false);
        }
        int min = preprocessor.path("min_patches").asInt(1), max = preprocessor.path("max_patches").asInt(12);
        if (min < 1 || max < min || max > 64) {
            throw new ConfigException(source + ": min_patches " + min + " and max_patches " + max
                    + " must satisfy 1 <= min <= max <= 64");
        }
        return new DynamicTiling(tile, min, max, true);
    }

    private static int sideOf(JsonNode preprocessor, int tile, String source) {
        JsonNode size = preprocessor.path("size");
        if (size.isMissingNode() || size.isNull()) return tile;
        if (size.isInt()) return size.asInt();
        if (size.path("height").isInt() && size.path("height").asInt() == size.path("width").asInt(-1)) {
            return size.path("height").asInt();
        }
        throw new ConfigException(source + ": preprocessor_config.json's size " + size + " is not a square tile");
    }

    /** Pillow's resampling and the normalization of the preprocessor's config (ImageNet's mean and std by default). */
    private static ClipImageProcessor processor(JsonNode preprocessor, int tile, String source) {
        ClipImageProcessor.Builder b = ClipImageProcessor.builder().size(tile, tile).doCenterCrop(false)
                .resample(ClipImageProcessor.BICUBIC).imageMean(0.485, 0.456, 0.406).imageStd(0.229, 0.224, 0.225);
        if (preprocessor != null) {
            if (preprocessor.path("resample").isInt()) b.resample(preprocessor.path("resample").asInt());
            if (preprocessor.path("rescale_factor").isNumber()) b.rescaleFactor(preprocessor.path("rescale_factor").asDouble());
            double[] mean = ClipImageProcessor.channels(preprocessor, "image_mean", null, source);
            double[] std = ClipImageProcessor.channels(preprocessor, "image_std", null, source);
            if (mean != null) b.imageMean(mean);
            if (std != null) b.imageStd(std);
        }
        return b.build();
    }

    /** The added tokens' ids by text, from tokenizer_config.json's added_tokens_decoder, else tokenizer.json's added_tokens. */
    private static Map<String, Integer> addedTokens(Path directory) {
        Map<String, Integer> found = new java.util.HashMap<>();
        JsonNode config = jsonFile(directory.resolve("tokenizer_config.json"));
        if (config != null && config.path("added_tokens_decoder").isObject()) {
            config.path("added_tokens_decoder").properties().forEach(e -> {
                OptionalInt id = parse(e.getKey());
                if (id.isPresent()) found.put(e.getValue().path("content").asText(), id.getAsInt());
            });
        }
        if (found.containsKey("<img>") && found.containsKey("</img>")) return found;
        JsonNode tokenizer = jsonFile(directory.resolve("tokenizer.json"));
        if (tokenizer != null) {
            for (JsonNode token : tokenizer.path("added_tokens")) {
                if (token.path("id").isInt()) found.putIfAbsent(token.path("content").asText(), token.path("id").asInt());
            }
        }
        return found;
    }

    private static OptionalInt parse(String id) {
        try {
            return OptionalInt.of(Integer.parseInt(id));
        } catch (NumberFormatException e) {
            return OptionalInt.empty();
        }
    }

}
