package dev.jvllm.models;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.jvllm.ImageInput;
import dev.jvllm.config.ConfigException;
import dev.jvllm.config.ModelConfig;
import dev.jvllm.models.layers.LayerNorm;
import dev.jvllm.models.layers.Linear;
import dev.jvllm.models.layers.Scratch;
import dev.jvllm.models.layers.WeightScope;
import dev.jvllm.models.vision.ClipImageProcessor;
import dev.jvllm.models.vision.DynamicTiling;
import dev.jvllm.models.vision.InternVisionTower;
import dev.jvllm.models.vision.VisionLanguageDecoder;
import dev.jvllm.spi.Activation;
import dev.jvllm.spi.CausalLM;
import dev.jvllm.spi.ModelArchitecture;
import dev.jvllm.spi.ModelContext;
import dev.jvllm.spi.Tensor;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.OptionalInt;

/**
 * InternVL 2.5 / 3 in Transformers' format ({@code OpenGVLab/InternVL3-1B-hf} and the other
 * {@code -hf} checkpoints): an image is cut into up to {@code max_patches} tiles of the tower's
 * size by its aspect ratio, plus a thumbnail ({@link DynamicTiling}); the InternViT tower's last
 * states less the class token are pixel-shuffled (each 2 × 2 patches into one row of 4× the width),
 * then a LayerNorm and a two-layer projector give each tile its rows, in a Qwen2 or Llama language
 * model. An image's placeholders ({@code <IMG_CONTEXT>}) sit between {@code <img>} and {@code </img>},
 * which the engine adds where the prompt lacks them.
 */
public final class InternVLForConditionalGeneration implements ModelArchitecture {

    private static final long MAX_JSON_BYTES = 64L << 20;

    @Override
    public List<String> architectureNames() {
        return List.of("InternVLForConditionalGeneration");
    }

    @Override
    public List<String> modelTypes() {
        return List.of("internvl");
    }

    @Override
    public CausalLM load(ModelContext context) {
        return new Model(context);
    }

    private static final class Model extends VisionLanguageDecoder {

        private final InternVisionTower tower;
        private final DynamicTiling tiling;
        private final ClipImageProcessor processor;
        private final int tileTokens;
        private final LayerNorm projectorNorm;
        private final Linear projectorIn;
        private final Linear projectorOut;
        private final Activation projectorActivation;
        private final int imageStart;
        private final int imageEnd;
        private final Scratch scratch;

        Model(ModelContext context) {
            super(context, textConfig(context.config()), 151667);
            ModelConfig config = context.config();
            ModelConfig vision = config.section("vision_config");
            JsonNode featureLayer = config.raw().path("vision_feature_layer");
            if (!featureLayer.isMissingNode() && !featureLayer.isInt()) {
                throw new ConfigException(config.source() + ": vision_feature_layer " + featureLayer
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
            int depth = vision.intOr(24, "num_hidden_layers");
            int layer = featureLayer.asInt(-1);
            this.tower = new InternVisionTower(vision, scopeHolding(root, "embeddings.cls_token", "vision_tower",
                    "model.vision_tower"), layer < 0 ? depth + 1 + layer : layer);
            int side = tower.gridSide();
            if (side % 2 != 0) {
                throw new ConfigException(config.source() + ": the tower's " + side + " × " + side
                        + " patches cannot be pixel-shuffled in 2 × 2 groups");
            }
            this.tileTokens = side * side / 4;
            int wide = 4 * tower.hiddenSize();
            WeightScope projector = scopeHolding(root, "layer_norm.weight", "multi_modal_projector", "model.multi_modal_projector");
            this.projectorNorm = LayerNorm.load(projector, "layer_norm", wide, 1e-5);
            this.projectorIn = Linear.load(projector, "linear_1", wide, hidden, true);
            this.projectorOut = Linear.load(projector, "linear_2", hidden, hidden, true);
            this.projectorActivation = Activation.fromConfig(config.raw().path("projector_hidden_act").asText("gelu"));
            Path directory = context.modelDirectory();
            JsonNode preprocessor = directory == null ? null : json(directory.resolve(ClipImageProcessor.CONFIG_FILE));
            this.tiling = tiling(preprocessor, tower.imageSize(), config.source());
            this.processor = processor(preprocessor, tower.imageSize(), config.source());
            Map<String, Integer> added = directory == null ? Map.of() : addedTokens(directory);
            this.imageStart = added.getOrDefault("<img>", -1);
            this.imageEnd = added.getOrDefault("</img>", -1);
            if (imageStart < 0 || imageEnd < 0) {
                org.slf4j.LoggerFactory.getLogger(InternVLForConditionalGeneration.class).warn(
                        "{}: the tokenizer files name no <img> and </img> tokens; prompts must hold them around each image's "
                                + "placeholders", config.source());
            }
            this.scratch = new Scratch(backend);
        }

        @Override
        public int imageTokenCount(ImageInput image) {
            return tileTokens * tiling.tileCount(image.width(), image.height());
        }

        @Override
        protected int maxImageTokens() {
            return tileTokens * tiling.maxTileCount();
        }

        @Override
        public int imageStartTokenId() {
            return imageStart;
        }

        @Override
        public int imageEndTokenId() {
            return imageEnd;
        }

        @Override
        public String imagePlaceholderText() {
            return "<IMG_CONTEXT>";
        }

        @Override
        protected void encode(List<ImageInput> images, List<Tensor> outs) {
            List<List<float[]>> tilesOfEach = images.size() == 1 ? List.of(tiles(images.getFirst()))
                    : images.parallelStream().map(this::tiles).toList();
            List<float[]> pixels = new ArrayList<>();
            for (List<float[]> tiles : tilesOfEach) pixels.addAll(tiles);
            Tensor states = tower.encode(pixels);
            int tiles = pixels.size();
            int side = tower.gridSide(), half = side / 2, perTile = tower.tokensPerImage();
            // The pixel shuffle: row (y, x) of a tile's output is the states of patches (2y, 2x),
            // (2y, 2x + 1), (2y + 1, 2x) and (2y + 1, 2x + 1) side by side (the class token dropped).
            int[] order = new int[tiles * 4 * tileTokens];
            int at = 0;
            for (int t = 0; t < tiles; t++) {
                for (int y = 0; y < half; y++) {
                    for (int x = 0; x < half; x++) {
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
                if (preprocessor.path("image_mean").isArray()) b.imageMean(channels(preprocessor.path("image_mean"), source));
                if (preprocessor.path("image_std").isArray()) b.imageStd(channels(preprocessor.path("image_std"), source));
            }
            return b.build();
        }

        private static double[] channels(JsonNode values, String source) {
            if (values.size() != 3) throw new ConfigException(source + ": image_mean and image_std hold 3 values, got " + values);
            return new double[]{values.get(0).asDouble(), values.get(1).asDouble(), values.get(2).asDouble()};
        }

        /** The added tokens' ids by text, from tokenizer_config.json's added_tokens_decoder, else tokenizer.json's added_tokens. */
        private static Map<String, Integer> addedTokens(Path directory) {
            Map<String, Integer> found = new java.util.HashMap<>();
            JsonNode config = json(directory.resolve("tokenizer_config.json"));
            if (config != null && config.path("added_tokens_decoder").isObject()) {
                config.path("added_tokens_decoder").properties().forEach(e -> {
                    OptionalInt id = parse(e.getKey());
                    if (id.isPresent()) found.put(e.getValue().path("content").asText(), id.getAsInt());
                });
            }
            if (found.containsKey("<img>") && found.containsKey("</img>")) return found;
            JsonNode tokenizer = json(directory.resolve("tokenizer.json"));
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

        /** The JSON of a model file, or null where it is absent. */
        private static JsonNode json(Path file) {
            try {
                if (!Files.isRegularFile(file)) return null;
                if (Files.size(file) > MAX_JSON_BYTES) throw new ConfigException(file + ": larger than " + MAX_JSON_BYTES + " bytes");
                JsonNode node = new ObjectMapper().readTree(file.toFile());
                if (node == null || !node.isObject()) throw new ConfigException(file + ": expected a JSON object");
                return node;
            } catch (IOException e) {
                throw new ConfigException(file + ": not valid JSON: " + e.getMessage(), e);
            }
        }
    }
}
