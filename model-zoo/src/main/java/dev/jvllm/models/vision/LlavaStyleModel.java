package dev.jvllm.models.vision;

import dev.jvllm.ImageInput;
import dev.jvllm.config.ConfigException;
import dev.jvllm.config.ModelConfig;
import dev.jvllm.models.layers.Linear;
import dev.jvllm.models.layers.Scratch;
import dev.jvllm.models.layers.WeightScope;
import dev.jvllm.spi.Activation;
import dev.jvllm.spi.ModelContext;
import dev.jvllm.spi.Tensor;

import java.util.ArrayList;
import java.util.List;

/**
 * The LLaVA family's shape (arXiv:2304.08485, 2310.03744): an image becomes one or more square
 * tiles, a CLIP vision tower's hidden states at one layer (less the class token with strategy
 * "default") go through a two-layer projector, and the family arranges the tiles' features into
 * the rows that take the place of the prompt's image placeholders in a Llama, Mistral or Qwen2
 * language model ({@link VisionLanguageDecoder}).
 */
public abstract class LlavaStyleModel extends VisionLanguageDecoder<List<float[]>> {

    protected final ClipVisionTower tower;
    protected final ClipImageProcessor processor;
    /** The features a tile gives: the tower's states less the class token's where it is dropped. */
    protected final int tileTokens;
    private final Linear projectorIn;
    private final Linear projectorOut;
    private final Activation projectorActivation;
    /** The first tower state a tile's features take: 1 drops the class token. */
    private final int firstState;
    private final Scratch scratch;

    /**
     * @param strategies the {@code vision_feature_select_strategy} values the family serves
     */
    protected LlavaStyleModel(ModelContext context, List<String> strategies) {
        super(context, textConfig(context.config()), context.config().intOr(32000, "image_token_index", "image_token_id"));
        ModelConfig config = context.config();
        ModelConfig vision = config.section("vision_config");
        int layersRun = ClipVisionTower.layersRun(vision, config.raw().path("vision_feature_layer"), "vision_feature_layer",
                config.source());
        String strategy = config.raw().path("vision_feature_select_strategy").asText("default");
        if (!strategies.contains(strategy)) {
            throw new ConfigException(config.source() + ": vision_feature_select_strategy '" + strategy
                    + "' is not supported (" + String.join(", ", strategies) + ")");
        }
        this.firstState = strategy.equals("default") ? 1 : 0;
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
        boolean bias = config.bool("multimodal_projector_bias", true);
        WeightScope projector = scopeHolding(root, "linear_1.weight", "multi_modal_projector", "model.multi_modal_projector");
        this.projectorIn = Linear.load(projector, "linear_1", tower.hiddenSize(), hidden, bias);
        this.projectorOut = Linear.load(projector, "linear_2", hidden, hidden, bias);
        this.projectorActivation = Activation.fromConfig(config.raw().path("projector_hidden_act").asText("gelu"));
        this.scratch = new Scratch(backend);
    }

    /** The pixel values of each tile the tower reads for the image, channel-major [3, side, side]. */
    protected abstract List<float[]> tiles(ImageInput image);

    @Override
    protected final List<float[]> towerInput(ImageInput image) {
        return tiles(image);
    }

    /**
     * Writes the image's feature rows into {@code out} ([{@link #imageTokenCount}, hidden]) from
     * its tiles' projected features, {@code tileFeatures} ([tiles × {@link #tileTokens}, hidden],
     * tile after tile), whose one row past them is free for the family's use.
     */
    protected abstract void arrange(ImageInput image, Tensor tileFeatures, Tensor out);

    /** Tiles: one, for LLaVA-1.5. */
    @Override
    protected int towerCost(ImageInput image) {
        return 1;
    }

    /** The most tiles any image becomes. */
    protected int maxTiles() {
        return 1;
    }

    @Override
    protected int passBudget() {
        return Math.max(maxTiles(), TOWER_TOKENS_A_PASS / tower.tokensPerImage());
    }

    @Override
    protected ImageInput largestImage() {
        return blankImage(tower.imageSize(), tower.imageSize());
    }

    @Override
    protected void encodeTogether(List<ImageInput> images, List<Tensor> outs) {
        List<List<float[]>> tilesOfEach = towerInputs(images);
        List<float[]> pixels = new ArrayList<>();
        int[] firstTile = new int[images.size() + 1];
        for (int i = 0; i < images.size(); i++) {
            pixels.addAll(tilesOfEach.get(i));
            firstTile[i + 1] = firstTile[i] + tilesOfEach.get(i).size();
        }
        Tensor states = tower.encode(pixels);
        int perTile = tower.tokensPerImage();
        for (int i = 0; i < images.size(); i++) {
            int tiles = firstTile[i + 1] - firstTile[i];
            Tensor projected = scratch.get("llava.projected", tiles * tileTokens + 1, hidden);
            Tensor inner = scratch.get("llava.inner", tileTokens, hidden);
            for (int t = 0; t < tiles; t++) {
                Tensor selected = states.rows((firstTile[i] + t) * perTile + firstState, tileTokens);
                projectorIn.applyActivated(backend, projectorActivation, selected, inner);
                projectorOut.apply(backend, inner, projected.rows(t * tileTokens, tileTokens));
            }
            arrange(images.get(i), projected, outs.get(i));
        }
    }
}
