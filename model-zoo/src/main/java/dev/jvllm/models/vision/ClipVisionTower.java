package dev.jvllm.models.vision;

import com.fasterxml.jackson.databind.JsonNode;
import dev.jvllm.config.ConfigException;
import dev.jvllm.config.ModelConfig;
import dev.jvllm.engine.ForwardBatch;
import dev.jvllm.models.layers.LayerNorm;
import dev.jvllm.models.layers.Linear;
import dev.jvllm.models.layers.Mlp;
import dev.jvllm.models.layers.Scratch;
import dev.jvllm.models.layers.WeightScope;
import dev.jvllm.spi.Activation;
import dev.jvllm.spi.AttentionParams;
import dev.jvllm.spi.Backend;
import dev.jvllm.spi.Tensor;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;

/**
 * CLIP's vision transformer (arXiv:2103.00020) as vision-language models use it: the image cut
 * into patches, each projected (a convolution of stride its size, here a product over the
 * flattened patch), a class token in front, learned positions, a norm, then pre-norm encoder
 * layers with bidirectional attention. Only the layers up to the one whose output is taken are
 * loaded and run.
 */
public final class ClipVisionTower {

    private final Backend backend;
    private final int hidden;
    private final int imageSize;
    private final int patchSize;
    private final int gridSide;
    private final Tensor patchWeight;
    /** Row 0: the class embedding plus position 0's; row 1 + i: patch i's position. */
    private final Tensor positions;
    private final LayerNorm preNorm;
    private final List<VisionEncoderLayer> layers = new ArrayList<>();
    private final AttentionParams attention;
    private final Activation activation;
    private final Scratch scratch;

    /**
     * @param vision    the {@code vision_config} (CLIPVisionConfig's defaults where a field is missing)
     * @param scope     where the tower's weights live ({@code vision_tower.vision_model} or {@code vision_tower})
     * @param layersRun how many encoder layers to run: the index of the hidden state taken, 0 being the
     *                  normed embeddings
     */
    public ClipVisionTower(ModelConfig vision, WeightScope scope, int layersRun) {
        String type = vision.raw().path("model_type").asText("clip_vision_model");
        if (!type.equals("clip_vision_model")) {
            throw new ConfigException(vision.source() + ": model_type '" + type + "' is not supported as the vision tower "
                    + "(clip_vision_model is; SigLIP and others are not built yet)");
        }
        this.backend = scope.backend();
        this.hidden = vision.intOr(768, "hidden_size");
        int intermediate = vision.intOr(3072, "intermediate_size");
        int heads = vision.intOr(12, "num_attention_heads");
        int depth = vision.intOr(12, "num_hidden_layers");
        this.imageSize = vision.intOr(224, "image_size");
        this.patchSize = vision.intOr(32, "patch_size");
        int channels = vision.intOr(3, "num_channels");
        double eps = vision.doubleOr(1e-5, "layer_norm_eps");
        if (hidden < 1 || heads < 1 || hidden % heads != 0 || patchSize < 1 || imageSize % patchSize != 0 || channels != 3) {
            throw new ConfigException(vision.source() + ": hidden_size " + hidden + ", num_attention_heads " + heads
                    + ", image_size " + imageSize + ", patch_size " + patchSize + " and num_channels " + channels
                    + " do not make a CLIP vision tower (heads must divide the hidden size, patches the image, 3 channels)");
        }
        if (layersRun < 0 || layersRun > depth) {
            throw new ConfigException(vision.source() + ": the vision feature layer selects hidden state " + layersRun
                    + " of a tower with " + depth + " layers");
        }
        this.gridSide = imageSize / patchSize;
        int tokens = gridSide * gridSide + 1;
        this.activation = Activation.fromConfig(vision.raw().path("hidden_act").asText("quick_gelu"));
        this.attention = AttentionParams.causal(heads, heads, hidden / heads);
        WeightScope embeddings = scope.child("embeddings");
        this.patchWeight = embeddings.child("patch_embedding").tensor("weight", hidden, 3, patchSize, patchSize)
                .reshape(hidden, 3 * patchSize * patchSize);
        float[] table = embeddings.child("position_embedding").floats("weight", tokens, hidden);
        float[] classEmbedding = embeddings.floats("class_embedding", hidden);
        for (int i = 0; i < hidden; i++) table[i] += classEmbedding[i];
        this.positions = backend.allocate(tokens, hidden);
        asActivations(backend, backend.constant(table, tokens, hidden), positions);
        this.preNorm = LayerNorm.load(scope, "pre_layrnorm", hidden, eps);
        for (int i = 0; i < layersRun; i++) {
            WeightScope layer = scope.child("encoder").child("layers").child(Integer.toString(i));
            WeightScope attentionScope = layer.child("self_attn");
            WeightScope mlp = layer.child("mlp");
            layers.add(new VisionEncoderLayer(LayerNorm.load(layer, "layer_norm1", hidden, eps),
                    Linear.loadSiblings(attentionScope, List.of("q_proj", "k_proj", "v_proj"), hidden, true, hidden, hidden, hidden),
                    Linear.load(attentionScope, "out_proj", hidden, hidden, true),
                    LayerNorm.load(layer, "layer_norm2", hidden, eps),
                    Mlp.load(mlp, "fc1", "fc2", hidden, intermediate, activation, true)));
        }
        this.scratch = new Scratch(backend);
    }

    /**
     * How many encoder layers to run for the hidden state a config's {@code field} selects (absent:
     * -2, the second-to-last; negative indices count from the last state), as {@code layersRun}
     * takes it.
     *
     * @throws ConfigException naming {@code source} and the field where it is not one layer index
     */
    public static int layersRun(ModelConfig vision, JsonNode index, String field, String source) {
        if (!index.isMissingNode() && !index.isInt()) {
            throw new ConfigException(source + ": " + field + " " + index
                    + " is not supported (one layer index; features concatenated from several layers are not)");
        }
        int layer = index.asInt(-2);
        return layer < 0 ? vision.intOr(12, "num_hidden_layers") + 1 + layer : layer;
    }

    /** The side of the square image the tower reads, in pixels. */
    public int imageSize() {
        return imageSize;
    }

    public int hiddenSize() {
        return hidden;
    }

    /** The states an image yields: the class token's, then one a patch in row-major order. */
    public int tokensPerImage() {
        return gridSide * gridSide + 1;
    }

    /**
     * The hidden states of each image after the layers run, [images × tokensPerImage, hidden]
     * (scratch memory, valid until the next call). Each pixel array is channel-major [3, side, side].
     */
    public Tensor encode(List<float[]> pixels) {
        int images = pixels.size();
        int perImage = tokensPerImage();
        int tokens = images * perImage;
        Tensor embedded = embed(backend, scratch, pixels, imageSize, patchSize, patchWeight, null, positions);
        Tensor x = scratch.get("clip.hidden", tokens, hidden);
        preNorm.apply(backend, embedded, x);
        ForwardBatch sequences = VisionEncoderLayer.sequences(Collections.nCopies(images, perImage));
        for (VisionEncoderLayer layer : layers) {
            layer.forward(backend, scratch, x, sequences, attention, VisionEncoderLayer.QueryKeyStep.NONE);
        }
        return x;
    }

    /**
     * Each image's patches as rows of a convolution's inputs ([3, patch, patch] flattened), after a
     * zero row in each image's first place (the class token's, which the position table fills):
     * [images × (1 + side²), 3 × patch²]. Each pixel array is channel-major [3, imageSize, imageSize].
     */
    static float[] patchRows(List<float[]> pixels, int imageSize, int patchSize) {
        int gridSide = imageSize / patchSize;
        int perImage = gridSide * gridSide + 1;
        int patchWidth = 3 * patchSize * patchSize;
        float[] patches = new float[pixels.size() * perImage * patchWidth];
        for (float[] values : pixels) {
            if (values.length != 3 * imageSize * imageSize) {
                throw new IllegalArgumentException("pixel values of " + values.length + " elements, the tower reads 3 × "
                        + imageSize + " × " + imageSize);
            }
        }
        // Images side by side (a Phi-3-Vision image is 13 or more crops of 1.4 MB each).
        java.util.stream.IntStream.range(0, pixels.size()).parallel().forEach(image -> {
            float[] values = pixels.get(image);
            for (int py = 0; py < gridSide; py++) {
                for (int px = 0; px < gridSide; px++) {
                    int at = (image * perImage + 1 + py * gridSide + px) * patchWidth;
                    for (int c = 0; c < 3; c++) {
                        for (int ky = 0; ky < patchSize; ky++) {
                            System.arraycopy(values, (c * imageSize + py * patchSize + ky) * imageSize + px * patchSize,
                                    patches, at, patchSize);
                            at += patchSize;
                        }
                    }
                }
            }
        });
        return patches;
    }

    /**
     * Each image's patches through the patch product ({@code weight} [width, 3 × patch²], {@code bias}
     * or null) plus the position table ({@code positions}, the class token's row first): [images ×
     * (1 + side²), width] of scratch memory.
     */
    static Tensor embed(Backend backend, Scratch scratch, List<float[]> pixels, int imageSize, int patchSize, Tensor weight,
                        Tensor bias, Tensor positions) {
        int perImage = positions.rows(), tokens = pixels.size() * perImage, patchWidth = 3 * patchSize * patchSize;
        Tensor input = scratch.get("tower.patches", tokens, patchWidth);
        asActivations(backend, backend.stepValues(patchRows(pixels, imageSize, patchSize), tokens, patchWidth), input);
        Tensor embedded = scratch.get("tower.embedded", tokens, positions.cols());
        backend.linear(input, weight, bias, embedded);
        for (int image = 0; image < pixels.size(); image++) {
            Tensor rows = embedded.rows(image * perImage, perImage);
            backend.add(rows, positions, rows);
        }
        return embedded;
    }

    /** Float32 values into out, in the backend's activation type (a row gather converts). */
    static void asActivations(Backend backend, Tensor values, Tensor out) {
        int[] all = new int[values.rows()];
        for (int i = 0; i < all.length; i++) all[i] = i;
        backend.gatherRows(values, backend.indices(all), out);
    }
}
