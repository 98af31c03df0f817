package dev.jvllm.models.vision;

import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.jvllm.ImageInput;
import dev.jvllm.config.ModelConfig;
import dev.jvllm.spi.ModelContext;
import dev.jvllm.spi.Tensor;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Qwen2-VL and Qwen2.5-VL: an image of any size, resized to a multiple of 28 pixels within the
 * processor's pixel budget ({@link Qwen2VLImageProcessor}), becomes one token per 2 × 2 patches
 * ({@link Qwen2VisionTower}); the Qwen2 language model positions those tokens by their row and
 * column in the image (M-RoPE, {@code mrope_section}) and the text after an image from where the
 * image's grid ends. The placeholders ({@code <|image_pad|>}) sit between {@code <|vision_start|>}
 * and {@code <|vision_end|>}, which the engine adds where the prompt lacks them. Videos are not read.
 */
public final class Qwen2VLModel extends VisionLanguageDecoder<float[]> {

    private final Qwen2VisionTower tower;
    private final Qwen2VLImageProcessor processor;

    public Qwen2VLModel(ModelContext context) {
        super(context, text(context.config()), context.config().intOr(151655, "image_token_id"),
                context.config().intOr(151652, "vision_start_token_id"), context.config().intOr(151653, "vision_end_token_id"),
                "<|image_pad|>");
        ModelConfig config = context.config();
        ModelConfig vision = config.section("vision_config");
        this.tower = new Qwen2VisionTower(vision, scopeHolding(root, "patch_embed.proj.weight", "visual", "model.visual"));
        Path directory = context.modelDirectory();
        this.processor = Qwen2VLImageProcessor.of(directory == null ? null : jsonFile(directory.resolve("preprocessor_config.json")),
                tower.patchSize(), tower.mergeSize(), config.source());
        int merge = tower.mergeSize();
        languageRotary().bindImageGrid(image -> {
            int[] g = processor.grid(image);
            return new int[]{1, g[0] / merge, g[1] / merge};
        });
    }

    /**
     * The language model's config: text_config (Transformers 5), or the top level (the Hub's
     * configs), as Qwen2's; rope_scaling's "mrope" type is default frequencies in sections.
     */
    private static ModelConfig text(ModelConfig config) {
        if (config.raw().has("text_config")) return textConfig(config, "text_config");
        ObjectNode copy = ((ObjectNode) config.raw()).deepCopy();
        copy.put("model_type", "qwen2_vl_text");
        copy.remove("vision_config");
        return ModelConfig.of(copy, config.source());
    }

    @Override
    public int imageTokenCount(ImageInput image) {
        int[] g = processor.grid(image);
        return g[0] * g[1] / (tower.mergeSize() * tower.mergeSize());
    }

    /** smart_resize may round past max_pixels (an extreme aspect ratio against a small budget): refused on arrival. */
    @Override
    public void checkImage(ImageInput image) {
        int tokens = imageTokenCount(image);
        if (tokens > maxImageTokens()) {
            throw new dev.jvllm.InvalidRequestException("image", "an image of " + image.width() + " × " + image.height()
                    + " pixels becomes " + tokens + " tokens, more than the " + maxImageTokens() + " the processor's max_pixels allows");
        }
    }

    @Override
    protected int maxImageTokens() {
        return processor.maxPatches() / (tower.mergeSize() * tower.mergeSize()) + 1;
    }

    /** Patches. */
    @Override
    protected int towerCost(ImageInput image) {
        int[] g = processor.grid(image);
        return g[0] * g[1];
    }

    @Override
    protected int passBudget() {
        return Math.max(processor.maxPatches(), TOWER_TOKENS_A_PASS);
    }

    /** The largest square of whole merge windows within max_pixels, which smart_resize keeps as it is. */
    @Override
    protected ImageInput largestImage() {
        int[] size = processor.largestSize();
        return blankImage(size[1], size[0]);
    }

    @Override
    protected float[] towerInput(ImageInput image) {
        return processor.patches(image);
    }

    @Override
    protected void encodeTogether(List<ImageInput> images, List<Tensor> outs) {
        List<float[]> patches = towerInputs(images);
        List<int[]> grids = new ArrayList<>();
        for (ImageInput image : images) grids.add(processor.grid(image));
        Tensor merged = tower.encode(patches, grids);
        int first = 0;
        for (int i = 0; i < images.size(); i++) {
            int count = imageTokenCount(images.get(i));
            backend.scale(merged.rows(first, count), 1f, outs.get(i));
            first += count;
        }
    }
}
