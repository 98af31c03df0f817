package dev.jvllm.models;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.jvllm.ImageInput;
import dev.jvllm.config.ConfigException;
import dev.jvllm.config.ModelConfig;
import dev.jvllm.engine.ForwardBatch;
import dev.jvllm.engine.PromptImage;
import dev.jvllm.models.layers.Linear;
import dev.jvllm.models.layers.PreNormArchitecture;
import dev.jvllm.models.layers.PreNormDecoder;
import dev.jvllm.models.layers.Scratch;
import dev.jvllm.models.layers.WeightNames;
import dev.jvllm.models.layers.WeightScope;
import dev.jvllm.models.vision.ClipImageProcessor;
import dev.jvllm.models.vision.ClipVisionTower;
import dev.jvllm.models.vision.ImageFeatureCache;
import dev.jvllm.spi.Activation;
import dev.jvllm.spi.Backend;
import dev.jvllm.spi.CausalLM;
import dev.jvllm.spi.KvCache;
import dev.jvllm.spi.KvCacheSpec;
import dev.jvllm.spi.ModelArchitecture;
import dev.jvllm.spi.ModelContext;
import dev.jvllm.spi.Tensor;
import dev.jvllm.spi.VisionLanguageModel;
import dev.jvllm.weights.WeightsException;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Supplier;

/**
 * LLaVA-1.5 (arXiv:2310.03744; {@code llava-hf/llava-1.5-*-hf}): a CLIP vision tower's hidden
 * states at one layer, less the class token (strategy "default") or with it ("full"), through a
 * two-layer projector, take the place of the prompt's image placeholders in a Llama, Mistral or
 * Qwen2 language model. Each image takes as many placeholders as it has feature rows (576 for a
 * 336-pixel tower of 14-pixel patches); the engine expands a single {@code <image>} to that many.
 */
public final class LlavaForConditionalGeneration implements ModelArchitecture {

    /** Language models whose config fields are Llama's, by {@code text_config.model_type}, with that family's defaults. */
    private static final Map<String, Supplier<PreNormArchitecture>> LANGUAGE_MODELS = Map.of(
            "llama", LlamaForCausalLM::new, "mistral", MistralForCausalLM::new, "qwen2", Qwen2ForCausalLM::new);

    @Override
    public List<String> architectureNames() {
        return List.of("LlavaForConditionalGeneration");
    }

    @Override
    public CausalLM load(ModelContext context) {
        return new Model(context);
    }

    private static final class Model implements CausalLM, VisionLanguageModel {

        private final Backend backend;
        private final ClipVisionTower tower;
        private final ClipImageProcessor processor;
        private final Linear projectorIn;
        private final Linear projectorOut;
        private final Activation projectorActivation;
        /** The first tower state an image's features take: 1 drops the class token. */
        private final int firstState;
        private final int imageTokens;
        private final int imageTokenId;
        private final PreNormDecoder decoder;
        private final ImageFeatureCache features;
        private final Scratch scratch;

        Model(ModelContext context) {
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
            this.firstState = switch (strategy) {
                case "default" -> 1;
                case "full" -> 0;
                default -> throw new ConfigException(config.source() + ": vision_feature_select_strategy '" + strategy
                        + "' is not supported (default, full)");
            };
            WeightScope root = WeightScope.root(context.checkpoint(), backend);
            this.tower = new ClipVisionTower(vision, scopeHolding(root, "embeddings.patch_embedding.weight",
                    "vision_tower.vision_model", "vision_tower", "model.vision_tower.vision_model", "model.vision_tower"), layersRun);
            this.imageTokens = tower.tokensPerImage() - firstState;
            this.processor = context.modelDirectory() == null ? ClipImageProcessor.forSquare(tower.imageSize())
                    : ClipImageProcessor.load(context.modelDirectory());
            if (processor.outputHeight() != tower.imageSize() || processor.outputWidth() != tower.imageSize()) {
                throw new ConfigException(config.source() + ": the image processor gives " + processor.outputHeight() + " × "
                        + processor.outputWidth() + " pixels, the vision tower reads " + tower.imageSize() + " × " + tower.imageSize());
            }
            int hidden = text.hiddenSize();
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
            this.decoder = new PreNormDecoder(new ModelContext(text, context.checkpoint(), backend, context.maxModelLen(),
                    context.modelDirectory()), languageModel.optionsFor(text),
                    languageModel.optionsFor(text).names().under(decoderPrefix, lmHead), true, this::placeImages);
            this.features = new ImageFeatureCache(backend, imageTokens, hidden);
            this.scratch = new Scratch(backend);
        }

        @Override
        public int imageTokenId() {
            return imageTokenId;
        }

        @Override
        public int imageTokenCount(ImageInput image) {
            return imageTokens;
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

        private void encode(List<String> hashes, Map<String, ImageInput> images) {
            List<float[]> pixels = new ArrayList<>(hashes.size());
            for (String hash : hashes) pixels.add(processor.pixels(images.get(hash)));
            Tensor states = tower.encode(pixels);
            int perImage = tower.tokensPerImage();
            Tensor projected = scratch.get("llava.projected", imageTokens, projectorIn.outFeatures());
            for (int i = 0; i < hashes.size(); i++) {
                Tensor selected = states.rows(i * perImage + firstState, imageTokens);
                projectorIn.applyActivated(backend, projectorActivation, selected, projected);
                projectorOut.apply(backend, projected, features.put(hashes.get(i), images.keySet()));
            }
        }
    }

    /** The scope of the first prefix under which {@code probe} exists. */
    private static WeightScope scopeHolding(WeightScope root, String probe, String... prefixes) {
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
        Map<String, Object> defaults = switch (type) {
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
                else filled.put(field, (Double) value);
            }
        });
        if (!filled.has("model_type")) filled.put("model_type", type);
        return ModelConfig.of(filled, text.source());
    }

    private static PreNormArchitecture languageModel(ModelConfig text) {
        String type = text.modelType();
        Supplier<PreNormArchitecture> family = LANGUAGE_MODELS.get(type);
        if (family == null) {
            throw new ConfigException(text.source() + ": model_type '" + type + "' is not supported as LLaVA's language model "
                    + "(supported: " + String.join(", ", new java.util.TreeSet<>(LANGUAGE_MODELS.keySet())) + ")");
        }
        return family.get();
    }
}
