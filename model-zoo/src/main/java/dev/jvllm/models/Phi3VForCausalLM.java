package dev.jvllm.models;

import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.jvllm.ImageInput;
import dev.jvllm.config.ConfigException;
import dev.jvllm.config.ModelConfig;
import dev.jvllm.models.layers.Linear;
import dev.jvllm.models.layers.Scratch;
import dev.jvllm.models.layers.WeightScope;
import dev.jvllm.models.vision.ClipVisionTower;
import dev.jvllm.models.vision.Phi3VImageProcessor;
import dev.jvllm.models.vision.VisionLanguageDecoder;
import dev.jvllm.spi.Activation;
import dev.jvllm.spi.CausalLM;
import dev.jvllm.spi.ModelArchitecture;
import dev.jvllm.spi.ModelContext;
import dev.jvllm.spi.Tensor;

import java.util.ArrayList;
import java.util.List;

/**
 * Phi-3-Vision and Phi-3.5-Vision ({@code microsoft/Phi-3-vision-128k-instruct},
 * {@code Phi-3.5-vision-instruct}; custom code on the Hub, served by vLLM): a CLIP ViT-L/14-336 tower
 * reads an image's global view and up to {@code num_crops} crops ({@link Phi3VImageProcessor}); each
 * crop's patch states at the second-to-last layer, the class token's dropped, are merged 2 × 2 into
 * one row of four times the tower's width; the crops' merged maps are joined into one, each row ended
 * by the learned {@code sub_GN}, followed by {@code glb_GN} and the global view's map with its own row
 * ends; a two-layer GELU projector maps them into a Phi-3 language model. So an image takes
 * {@code (crops + 1) · 144 + 1 + (rows + 1) · 12} placeholders (for a 336-pixel tower).
 *
 * <p>The checkpoint's {@code img_processor} names the tower ({@code openai/clip-vit-large-patch14-336},
 * whose config the custom code builds in); a {@code vision_config} object there, which jvllm reads,
 * describes another CLIP tower (tests use a tiny one). Prompts mark images with {@code <|image_1|>},
 * {@code <|image_2|>}, ... in order; each becomes the placeholder token {@code <|image|>} (32044, or
 * config.json's {@code image_token_id}), the text between them tokenized apart, as the Hub's processor does.
 */
public final class Phi3VForCausalLM implements ModelArchitecture {

    /** Phi-3-Vision's {@code <|image|>}, which vLLM puts at each placeholder position. */
    static final int IMAGE_TOKEN = 32044;

    @Override
    public List<String> architectureNames() {
        return List.of("Phi3VForCausalLM");
    }

    @Override
    public List<String> modelTypes() {
        return List.of("phi3_v");
    }

    @Override
    public CausalLM load(ModelContext context) {
        return new Model(context);
    }

    private static final class Model extends VisionLanguageDecoder<List<float[]>> {

        private final ClipVisionTower tower;
        private final Phi3VImageProcessor processor;
        /** Merged rows along a crop's side: half the tower's patches along it. */
        private final int mergedSide;
        private final int towerWidth;
        /** sub_GN then glb_GN, as 4 rows of the tower's width each. */
        private final Tensor separators;
        private final Linear projectorIn;
        private final Linear projectorOut;
        private final Scratch scratch;

        Model(ModelContext context) {
            super(context, languageConfig(context.config()), context.config().intOr(IMAGE_TOKEN, "image_token_id"), -1, -1,
                    "<|image|>");
            ModelConfig config = context.config();
            ModelConfig imageConfig = config.section("img_processor");
            requireText(imageConfig, "name", "clip_vision_model", "");
            requireText(imageConfig, "type_feature", "patch", "patch");
            ModelConfig embedding = config.section("embd_layer");
            requireFlag(embedding, "use_hd_transform");
            requireFlag(embedding, "with_learnable_separator");
            requireText(embedding, "hd_transform_order", "sub_glb", "glb_sub");
            requireText(embedding, "projection_cls", "mlp", "linear");

            ModelConfig vision = imageConfig.raw().has("vision_config") ? imageConfig.section("vision_config") : clipLarge336(config);
            WeightScope embed = root.child("model").child("vision_embed_tokens");
            this.tower = new ClipVisionTower(vision, scopeHolding(embed, "embeddings.patch_embedding.weight",
                    "img_processor.vision_model", "img_processor"),
                    ClipVisionTower.layersRun(vision, imageConfig.raw().path("layer_idx"), "img_processor.layer_idx", config.source()));
            this.towerWidth = tower.hiddenSize();
            int dimOut = imageConfig.intOr(towerWidth, "image_dim_out");
            if (dimOut != towerWidth) {
                throw new ConfigException(config.source() + ": img_processor.image_dim_out " + dimOut + " differs from the tower's width "
                        + towerWidth);
            }
            int side = (int) Math.round(Math.sqrt(tower.tokensPerImage() - 1));
            if (side % 2 != 0) {
                throw new ConfigException(config.source() + ": the tower's " + side + " patches a side cannot be merged 2 × 2");
            }
            this.mergedSide = side / 2;
            this.processor = Phi3VImageProcessor.load(context.modelDirectory(), tower.imageSize());
            int merged = 4 * towerWidth;
            float[] rows = new float[2 * merged];
            System.arraycopy(embed.floats("sub_GN", 1, 1, 1, merged), 0, rows, 0, merged);
            System.arraycopy(embed.floats("glb_GN", 1, 1, merged), 0, rows, merged, merged);
            this.separators = backend.constant(rows, 8, towerWidth);
            WeightScope projection = embed.child("img_projection");
            this.projectorIn = Linear.load(projection, "0", merged, hidden, true);
            this.projectorOut = Linear.load(projection, "2", hidden, hidden, true);
            this.scratch = new Scratch(backend);
        }

        /** The top-level config as Phi-3's: the language model's fields sit beside the image ones. */
        private static ModelConfig languageConfig(ModelConfig config) {
            ObjectNode text = ((ObjectNode) config.raw()).deepCopy();
            text.put("model_type", "phi3");
            return ModelConfig.of(text, config.source());
        }

        /** CLIP ViT-L/14 at 336 pixels, which Phi-3-Vision's custom code builds in. */
        private static ModelConfig clipLarge336(ModelConfig config) {
            String name = config.section("img_processor").raw().path("model_name").asText("openai/clip-vit-large-patch14-336");
            if (!name.equals("openai/clip-vit-large-patch14-336")) {
                throw new ConfigException(config.source() + ": img_processor.model_name '" + name
                        + "' is not supported (openai/clip-vit-large-patch14-336 is, or a vision_config object beside it)");
            }
            ObjectNode clip = JsonNodeFactory.instance.objectNode();
            clip.put("model_type", "clip_vision_model").put("hidden_size", 1024).put("intermediate_size", 4096)
                    .put("num_hidden_layers", 24).put("num_attention_heads", 16).put("image_size", 336).put("patch_size", 14)
                    .put("hidden_act", "quick_gelu").put("layer_norm_eps", 1e-5);
            return ModelConfig.of(clip, config.source() + " img_processor (CLIP ViT-L/14-336)");
        }

        /** The field must hold {@code wanted}; missing, it takes the Hub code's default, {@code byDefault}. */
        private static void requireText(ModelConfig section, String field, String wanted, String byDefault) {
            String value = section.raw().path(field).asText(byDefault);
            if (!value.equals(wanted)) {
                throw new ConfigException(section.source() + ": " + field + " '" + value + "'" + (section.raw().has(field) ? "" : " (its default)")
                        + " is not supported (" + wanted + " is)");
            }
        }

        /** The flag must be true; the Hub code's default is false. */
        private static void requireFlag(ModelConfig section, String field) {
            if (!section.raw().path(field).asBoolean(false)) {
                throw new ConfigException(section.source() + ": " + field + " " + (section.raw().has(field) ? "false" : "missing (false)")
                        + " is not supported (Phi-3-Vision's HD transform is)");
            }
        }

        private static final java.util.regex.Pattern TAGS = java.util.regex.Pattern.compile("<\\|image_(\\d+)\\|>");

        @Override
        public java.util.regex.Pattern numberedImageTags() {
            return TAGS;
        }

        @Override
        public String numberedImageTag(int number) {
            return "<|image_" + number + "|>";
        }

        @Override
        public void checkImage(ImageInput image) {
            processor.check(image);
        }

        @Override
        public int imageTokenCount(ImageInput image) {
            Phi3VImageProcessor.Layout l = processor.layout(image.width(), image.height());
            return featureCount(l.rows(), l.cols());
        }

        private int featureCount(int rows, int cols) {
            int m = mergedSide;
            return (rows * cols + 1) * m * m + 1 + (rows + 1) * m;
        }

        @Override
        protected int maxImageTokens() {
            return featureCount(processor.numCrops(), 1);
        }

        @Override
        protected int towerCost(ImageInput image) {
            return 1 + processor.layout(image.width(), image.height()).crops();
        }

        @Override
        protected int passBudget() {
            return Math.max(1 + processor.numCrops(), TOWER_TOKENS_A_PASS / tower.tokensPerImage());
        }

        /** A tall image of one crop's width and num_crops crops' height: scaled to a column of num_crops crops. */
        @Override
        protected ImageInput largestImage() {
            return blankImage(tower.imageSize(), tower.imageSize() * processor.numCrops());
        }

        @Override
        protected List<float[]> towerInput(ImageInput image) {
            return processor.crops(image);
        }

        @Override
        protected void encodeTogether(List<ImageInput> images, List<Tensor> outs) {
            List<List<float[]>> cropsOfEach = towerInputs(images);
            List<float[]> pixels = new ArrayList<>();
            cropsOfEach.forEach(pixels::addAll);
            Tensor states = tower.encode(pixels);
            int perCrop = tower.tokensPerImage();
            // The tower's states, then the separators' rows: what the merged rows are gathered from.
            Tensor source = scratch.get("phi3v.source", states.rows() + 8, towerWidth);
            backend.scale(states, 1f, source.rows(0, states.rows()));
            backend.gatherRows(separators, backend.indices(new int[]{0, 1, 2, 3, 4, 5, 6, 7}), source.rows(states.rows(), 8));
            int firstCrop = 0;
            for (int i = 0; i < images.size(); i++) {
                ImageInput image = images.get(i);
                Phi3VImageProcessor.Layout l = processor.layout(image.width(), image.height());
                int[] rows = mergedRows(l.rows(), l.cols(), firstCrop * perCrop, perCrop, states.rows());
                int count = rows.length / 4;
                Tensor merged = scratch.get("phi3v.merged", rows.length, towerWidth);
                backend.gatherRows(source, backend.indices(rows), merged);
                Tensor inner = scratch.get("phi3v.inner", count, hidden);
                projectorIn.applyActivated(backend, Activation.GELU, merged.reshape(count, 4 * towerWidth), inner);
                projectorOut.apply(backend, inner, outs.get(i));
                firstCrop += cropsOfEach.get(i).size();
            }
        }

        /**
         * For each feature row of an image with a {@code rows × cols} crop grid, the four source rows
         * its 4 × width channels join: the crops' merged map row by row, each row ended by sub_GN, then
         * glb_GN, then the global view's map likewise. A merged row joins the patches (2i, 2j),
         * (2i, 2j + 1), (2i + 1, 2j), (2i + 1, 2j + 1); the global view is the image's first tower input.
         */
        private int[] mergedRows(int rows, int cols, int firstState, int perCrop, int separatorsAt) {
            int m = mergedSide, side = 2 * m;
            int[] out = new int[4 * featureCount(rows, cols)];
            int at = 0;
            for (int r = 0; r < rows * m; r++) {
                for (int c = 0; c < cols * m; c++) {
                    int crop = 1 + (r / m) * cols + c / m;
                    at = patchQuad(out, at, firstState + crop * perCrop + 1, side, r % m, c % m);
                }
                at = separator(out, at, separatorsAt);
            }
            at = separator(out, at, separatorsAt + 4);
            for (int i = 0; i < m; i++) {
                for (int j = 0; j < m; j++) at = patchQuad(out, at, firstState + 1, side, i, j);
                at = separator(out, at, separatorsAt);
            }
            return out;
        }

        private static int patchQuad(int[] out, int at, int firstPatch, int side, int i, int j) {
            for (int dy = 0; dy < 2; dy++) {
                for (int dx = 0; dx < 2; dx++) out[at++] = firstPatch + (2 * i + dy) * side + 2 * j + dx;
            }
            return at;
        }

        private static int separator(int[] out, int at, int first) {
            for (int k = 0; k < 4; k++) out[at++] = first + k;
            return at;
        }
    }
}
