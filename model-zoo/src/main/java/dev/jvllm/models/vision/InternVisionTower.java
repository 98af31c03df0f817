package dev.jvllm.models.vision;

import com.fasterxml.jackson.databind.JsonNode;
import dev.jvllm.config.ConfigException;
import dev.jvllm.config.ModelConfig;
import dev.jvllm.engine.ForwardBatch;
import dev.jvllm.models.layers.LayerNorm;
import dev.jvllm.models.layers.Linear;
import dev.jvllm.models.layers.Mlp;
import dev.jvllm.models.layers.Norm;
import dev.jvllm.models.layers.RmsNorm;
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
 * InternViT, InternVL's vision transformer as Transformers' {@code internvl_vision} model holds it:
 * patches projected (a convolution with a bias), a class token, learned positions, then layers of
 * {@code x += λ₁ · O(attention(norm x))}, {@code x += λ₂ · fc2(act(fc1(norm x)))} with LayerNorm or
 * RMSNorm, optional full-width RMSNorms on the queries and keys, and a final LayerNorm on the last
 * layer's states unless {@code use_mean_pooling}. The layer scales λ are folded into the rows of
 * the output projection and of fc2 at load.
 */
public final class InternVisionTower {

    /**
     * Where a tower's weights sit: Transformers' {@code internvl_vision} names, or InternVL's own
     * ({@code InternVisionModel}: a fused {@code qkv}, {@code ls1}/{@code ls2}, no final norm).
     *
     * @param qkv       three projections, or one fused [q; k; v]
     * @param finalNorm the norm after the last layer, or null for none
     * @param qkNormEps the q/k RMSNorms' epsilon, or 0 for the config's {@code layer_norm_eps}
     */
    public record Names(String classToken, String patchEmbedding, String positions, String layers, String attention,
                        List<String> qkv, String output, String attentionNorm, String mlpNorm, String attentionScale,
                        String mlpScale, String finalNorm, double qkNormEps) {

        public static final Names TRANSFORMERS = new Names("embeddings.cls_token", "embeddings.patch_embeddings.projection",
                "embeddings.position_embeddings", "encoder.layer", "attention", List.of("q_proj", "k_proj", "v_proj"),
                "projection_layer", "layernorm_before", "layernorm_after", "lambda_1", "lambda_2", "layernorm", 1e-6);

        public static final Names INTERNVL = new Names("embeddings.class_embedding", "embeddings.patch_embedding",
                "embeddings.position_embedding", "encoder.layers", "attn", List.of("qkv"), "proj", "norm1", "norm2", "ls1",
                "ls2", null, 0);
    }

    /** A layer and its RMSNorms of the whole query and key widths (null where the tower has none). */
    private record Layer(VisionEncoderLayer layer, Norm queryNorm, Norm keyNorm) {
    }

    private final Backend backend;
    private final int hidden;
    private final int imageSize;
    private final int patchSize;
    private final int gridSide;
    private final Tensor patchWeight;
    private final Tensor patchBias;
    /** Row 0: the class token plus position 0's; row 1 + i: patch i's position. */
    private final Tensor positions;
    private final List<Layer> layers = new ArrayList<>();
    /** Null where the states taken are not the last layer's, or the model pools by mean (no norm). */
    private final LayerNorm finalNorm;
    private final AttentionParams attention;
    private final Activation activation;
    private final Scratch scratch;

    /**
     * @param vision    the {@code vision_config}
     * @param scope     where the tower's weights live ({@code vision_tower} or {@code model.vision_tower})
     * @param layersRun how many layers to run: the index of the hidden state taken, 0 being the embeddings
     * @param names     Transformers' or InternVL's own weight names
     */
    public InternVisionTower(ModelConfig vision, WeightScope scope, int layersRun, Names names) {
        this.backend = scope.backend();
        this.hidden = vision.intOr(1024, "hidden_size");
        int intermediate = vision.intOr(4096, "intermediate_size");
        int heads = vision.intOr(16, "num_attention_heads");
        int depth = vision.intOr(24, "num_hidden_layers");
        this.imageSize = squareSide(vision, "image_size", 448);
        this.patchSize = squareSide(vision, "patch_size", 14);
        double eps = vision.doubleOr(1e-6, "layer_norm_eps");
        String normType = vision.raw().path("norm_type").asText("layer_norm");
        if (!normType.equals("layer_norm") && !normType.equals("rms_norm")) {
            throw new ConfigException(vision.source() + ": norm_type '" + normType + "' is not supported (layer_norm, rms_norm)");
        }
        if (hidden < 1 || heads < 1 || hidden % heads != 0 || patchSize < 1 || imageSize % patchSize != 0
                || vision.intOr(3, "num_channels") != 3) {
            throw new ConfigException(vision.source() + ": hidden_size " + hidden + ", num_attention_heads " + heads
                    + ", image_size " + imageSize + " and patch_size " + patchSize + " do not make an InternViT tower");
        }
        if (!vision.bool("use_absolute_position_embeddings", true)) {
            throw new ConfigException(vision.source() + ": use_absolute_position_embeddings false is not supported");
        }
        if (layersRun < 0 || layersRun > depth) {
            throw new ConfigException(vision.source() + ": the vision feature layer selects hidden state " + layersRun
                    + " of a tower with " + depth + " layers");
        }
        this.gridSide = imageSize / patchSize;
        int tokens = gridSide * gridSide + 1;
        this.activation = Activation.fromConfig(vision.raw().path("hidden_act").asText("gelu"));
        this.attention = AttentionParams.causal(heads, heads, hidden / heads);
        WeightScope projection = scope.child(names.patchEmbedding());
        this.patchWeight = projection.tensor("weight", hidden, 3, patchSize, patchSize).reshape(hidden, 3 * patchSize * patchSize);
        this.patchBias = projection.tensor("bias", hidden);
        float[] table = scope.floats(names.positions(), 1, tokens, hidden);
        float[] classToken = scope.floats(names.classToken(), 1, 1, hidden);
        float[] patchBiasValues = projection.floats("bias", hidden);
        // The class row's patch slot is zero, and the product adds the bias to it too: taken back here.
        for (int i = 0; i < hidden; i++) table[i] += classToken[i] - patchBiasValues[i];
        this.positions = backend.allocate(tokens, hidden);
        ClipVisionTower.asActivations(backend, backend.constant(table, tokens, hidden), positions);
        // Transformers' field names, then InternVL's own.
        boolean attentionBias = vision.bool("attention_bias", vision.bool("qkv_bias", false));
        boolean qkNorm = vision.bool("use_qk_norm", vision.bool("qk_normalization", false));
        double qkEps = names.qkNormEps() > 0 ? names.qkNormEps() : eps;
        for (int i = 0; i < layersRun; i++) {
            WeightScope layer = scope.child(names.layers()).child(Integer.toString(i));
            WeightScope attentionScope = layer.child(names.attention());
            WeightScope mlp = layer.child("mlp");
            float[] attentionScale = layer.floats(names.attentionScale(), hidden);
            float[] mlpScale = layer.floats(names.mlpScale(), hidden);
            Linear[] qkv = names.qkv().size() == 1
                    ? Linear.loadRowBlocks(attentionScope, names.qkv().getFirst(), hidden, attentionBias, hidden, hidden, hidden)
                    : Linear.loadSiblings(attentionScope, names.qkv(), hidden, attentionBias, hidden, hidden, hidden);
            layers.add(new Layer(new VisionEncoderLayer(norm(layer, names.attentionNorm(), normType, eps), qkv,
                    scaledRows(attentionScope, names.output(), hidden, hidden, attentionScale),
                    norm(layer, names.mlpNorm(), normType, eps),
                    new Mlp(Linear.load(mlp, "fc1", hidden, intermediate, true), activation,
                            scaledRows(mlp, "fc2", intermediate, hidden, mlpScale))),
                    qkNorm ? RmsNorm.load(attentionScope, "q_norm", hidden, qkEps) : null,
                    qkNorm ? RmsNorm.load(attentionScope, "k_norm", hidden, qkEps) : null));
        }
        boolean lastLayer = layersRun == depth;
        this.finalNorm = lastLayer && names.finalNorm() != null && !vision.bool("use_mean_pooling", true)
                ? LayerNorm.load(scope, names.finalNorm(), hidden, eps) : null;
        this.scratch = new Scratch(backend);
    }

    private static int squareSide(ModelConfig vision, String field, int classDefault) {
        JsonNode value = vision.raw().path(field);
        if (value.isMissingNode() || value.isNull()) return classDefault;
        if (value.isInt()) return value.asInt();
        if (value.isArray() && value.size() == 2 && value.get(0).isInt() && value.get(0).asInt() == value.get(1).asInt()) {
            return value.get(0).asInt();
        }
        throw new ConfigException(vision.source() + ": " + field + " " + value + " is not a square size (one int, or [n, n])");
    }

    private Norm norm(WeightScope layer, String name, String type, double eps) {
        return type.equals("rms_norm") ? RmsNorm.load(layer, name, hidden, eps) : LayerNorm.load(layer, name, hidden, eps);
    }

    /** {@code <name>} [out, in] with its bias, row r of both times {@code scale[r]}: the layer scale folded in. */
    private Linear scaledRows(WeightScope scope, String name, int in, int out, float[] scale) {
        WeightScope s = scope.child(name);
        float[] w = s.floats("weight", out, in);
        float[] b = s.floats("bias", out);
        for (int r = 0; r < out; r++) {
            for (int c = 0; c < in; c++) w[r * in + c] *= scale[r];
            b[r] *= scale[r];
        }
        return new Linear(backend.constant(w, out, in), backend.constant(b, 1, out), in, out);
    }

    /** The side of the square tile the tower reads, in pixels. */
    public int imageSize() {
        return imageSize;
    }

    public int hiddenSize() {
        return hidden;
    }

    /** Patches a side of the tile. */
    public int gridSide() {
        return gridSide;
    }

    /** The states a tile yields: the class token's, then one a patch in row-major order. */
    public int tokensPerImage() {
        return gridSide * gridSide + 1;
    }

    /**
     * The hidden states of each tile after the layers run, [tiles × tokensPerImage, hidden]
     * (scratch memory, valid until the next call). Each pixel array is channel-major [3, side, side].
     */
    public Tensor encode(List<float[]> pixels) {
        int tiles = pixels.size();
        int perTile = tokensPerImage();
        int tokens = tiles * perTile;
        Tensor x = ClipVisionTower.embed(backend, scratch, pixels, imageSize, patchSize, patchWeight, patchBias, positions);
        ForwardBatch sequences = VisionEncoderLayer.sequences(Collections.nCopies(tiles, perTile));
        for (Layer layer : layers) {
            layer.layer().forward(backend, scratch, x, sequences, attention, layer.queryNorm() == null
                    ? VisionEncoderLayer.QueryKeyStep.NONE
                    : (q, k, s) -> {
                        Tensor normedQ = s.get("internvit.q", q.rows(), q.cols()), normedK = s.get("internvit.k", k.rows(), k.cols());
                        layer.queryNorm().apply(backend, q, normedQ);
                        layer.keyNorm().apply(backend, k, normedK);
                        return new Tensor[]{normedQ, normedK};
                    });
        }
        if (finalNorm == null) return x;
        Tensor normed = scratch.get("internvit.final", tokens, hidden);
        finalNorm.apply(backend, x, normed);
        return normed;
    }
}
