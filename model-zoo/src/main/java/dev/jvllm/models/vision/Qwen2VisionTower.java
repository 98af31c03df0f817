package dev.jvllm.models.vision;

import dev.jvllm.config.ConfigException;
import dev.jvllm.config.ModelConfig;
import dev.jvllm.engine.ForwardBatch;
import dev.jvllm.models.layers.LayerNorm;
import dev.jvllm.models.layers.Linear;
import dev.jvllm.models.layers.Scratch;
import dev.jvllm.models.layers.WeightScope;
import dev.jvllm.spi.Activation;
import dev.jvllm.spi.AttentionParams;
import dev.jvllm.spi.Backend;
import dev.jvllm.spi.Tensor;

import java.util.ArrayList;
import java.util.List;

/**
 * Qwen2-VL's vision transformer: patches of 2 frames × 14 × 14 pixels projected (a 3-D
 * convolution without a bias; a still image's two frames are the same, so the product runs over
 * one frame with the kernel's two frames summed), layers of pre-norm attention with a 2-D rotary
 * embedding (the first half of each head's pairs turned by the patch's row, the second by its
 * column) and a quick-GELU MLP, then the merger: a LayerNorm, each 2 × 2 window of patches side by
 * side, and a two-layer GELU MLP into the language model's width. Images attend within themselves.
 */
public final class Qwen2VisionTower {

    private final Backend backend;
    private final int embed;
    private final int heads;
    private final int patch;
    private final int merge;
    private final Tensor patchWeight;
    private final List<VisionEncoderLayer> layers = new ArrayList<>();
    private final LayerNorm mergerNorm;
    private final Linear mergerIn;
    private final Linear mergerOut;
    private final Activation activation;
    private final AttentionParams attention;
    private final double[] invFreq;
    private final Scratch scratch;

    public Qwen2VisionTower(ModelConfig vision, WeightScope scope) {
        this.backend = scope.backend();
        this.embed = vision.intOr(1280, "embed_dim");
        int outWidth = vision.intOr(3584, "hidden_size");
        this.heads = vision.intOr(16, "num_heads");
        int depth = vision.intOr(32, "depth");
        int ratio = vision.intOr(4, "mlp_ratio");
        this.patch = vision.intOr(14, "patch_size");
        this.merge = vision.intOr(2, "spatial_merge_size");
        int temporal = vision.intOr(2, "temporal_patch_size");
        if (embed < 1 || heads < 1 || embed % heads != 0 || (embed / heads) % 4 != 0 || merge != 2
                || vision.intOr(3, "in_channels") != 3) {
            throw new ConfigException(vision.source() + ": embed_dim " + embed + ", num_heads " + heads + " and spatial_merge_size "
                    + merge + " do not make a Qwen2-VL vision tower (heads a multiple of 4 wide, 2 × 2 merges, 3 channels)");
        }
        int headDim = embed / heads;
        this.activation = Activation.fromConfig(vision.raw().path("hidden_act").asText("quick_gelu"));
        this.attention = AttentionParams.causal(heads, heads, headDim);
        double theta = vision.raw().path("rope_parameters").path("rope_theta").asDouble(10_000.0);
        this.invFreq = new double[headDim / 4];
        for (int i = 0; i < invFreq.length; i++) invFreq[i] = 1.0 / Math.pow(theta, (2.0 * i) / (headDim / 2.0));
        // The convolution over frames of one still image: its kernel summed over the temporal axis.
        float[] kernel = scope.child("patch_embed").child("proj").floats("weight", embed, 3, temporal, patch, patch);
        int area = patch * patch;
        float[] summed = new float[embed * 3 * area];
        for (int e = 0; e < embed; e++) {
            for (int c = 0; c < 3; c++) {
                for (int t = 0; t < temporal; t++) {
                    int from = (((e * 3 + c) * temporal) + t) * area, to = (e * 3 + c) * area;
                    for (int k = 0; k < area; k++) summed[to + k] += kernel[from + k];
                }
            }
        }
        this.patchWeight = backend.constant(summed, embed, 3 * area);
        for (int i = 0; i < depth; i++) {
            WeightScope block = scope.child("blocks").child(Integer.toString(i));
            WeightScope attn = block.child("attn");
            WeightScope mlp = block.child("mlp");
            layers.add(new VisionEncoderLayer(LayerNorm.load(block, "norm1", embed, 1e-6),
                    Linear.loadRowBlocks(attn, "qkv", embed, true, embed, embed, embed),
                    Linear.load(attn, "proj", embed, embed, true),
                    LayerNorm.load(block, "norm2", embed, 1e-6),
                    Linear.load(mlp, "fc1", embed, embed * ratio, true),
                    Linear.load(mlp, "fc2", embed * ratio, embed, true)));
        }
        WeightScope merger = scope.child("merger");
        this.mergerNorm = LayerNorm.load(merger, "ln_q", embed, 1e-6);
        int window = embed * merge * merge;
        this.mergerIn = Linear.load(merger.child("mlp"), "0", window, window, true);
        this.mergerOut = Linear.load(merger.child("mlp"), "2", window, outWidth, true);
        this.scratch = new Scratch(backend);
    }

    public int patchSize() {
        return patch;
    }

    public int mergeSize() {
        return merge;
    }

    /**
     * The merged features of each image, [Σ patches / 4, language width] image after image (scratch
     * memory, valid until the next call), from each image's patches ([patches, 3 × patch²], merge
     * window by merge window) and its grid of patches ({height, width}).
     */
    public Tensor encode(List<float[]> patches, List<int[]> grids) {
        int tokens = 0;
        for (int[] g : grids) tokens += g[0] * g[1];
        int width = 3 * patch * patch;
        float[] all = new float[tokens * width];
        int at = 0;
        for (float[] p : patches) {
            System.arraycopy(p, 0, all, at, p.length);
            at += p.length;
        }
        Tensor input = scratch.get("qwen2vit.patches", tokens, width);
        ClipVisionTower.asActivations(backend, backend.stepValues(all, tokens, width), input);
        Tensor x = scratch.get("qwen2vit.hidden", tokens, embed);
        backend.linear(input, patchWeight, null, x);
        Tensor rotary = backend.stepValues(rotaryRows(grids, tokens), tokens, embed / heads);
        int[] own = new int[tokens];
        for (int i = 0; i < tokens; i++) own[i] = i;
        Tensor rows = backend.indices(own);
        ForwardBatch sequences = sequences(grids, tokens);
        int headDim = embed / heads;
        VisionEncoderLayer.QueryKeyStep rotate = (q, k, s) -> {
            backend.rotary(q, heads, headDim, headDim, true, rotary, rows);
            backend.rotary(k, heads, headDim, headDim, true, rotary, rows);
            return new Tensor[]{q, k};
        };
        for (VisionEncoderLayer layer : layers) {
            layer.forward(backend, scratch, x, sequences, attention, activation, rotate);
        }
        Tensor normed = scratch.get("qwen2vit.merged", tokens, embed);
        mergerNorm.apply(backend, x, normed);
        int windows = tokens / (merge * merge);
        Tensor inner = scratch.get("qwen2vit.mergerInner", windows, mergerIn.outFeatures());
        mergerIn.applyActivated(backend, Activation.GELU, normed.reshape(windows, embed * merge * merge), inner);
        Tensor out = scratch.get("qwen2vit.out", windows, mergerOut.outFeatures());
        mergerOut.apply(backend, inner, out);
        return out;
    }

    /** Each patch's rotary row (cosines, then sines, of its pairs): the first quarter of the head's features by row, the next by column. */
    private float[] rotaryRows(List<int[]> grids, int tokens) {
        int headDim = embed / heads, half = headDim / 2, quarter = invFreq.length;
        float[] table = new float[tokens * headDim];
        int token = 0;
        for (int[] g : grids) {
            int windowsAcross = g[1] / merge;
            for (int j = 0; j < g[0] * g[1]; j++, token++) {
                int window = j / (merge * merge), within = j % (merge * merge);
                int row = (window / windowsAcross) * merge + within / merge;
                int column = (window % windowsAcross) * merge + within % merge;
                for (int i = 0; i < half; i++) {
                    double angle = (i < quarter ? row : column) * invFreq[i % quarter];
                    table[token * headDim + i] = (float) Math.cos(angle);
                    table[token * headDim + half + i] = (float) Math.sin(angle);
                }
            }
        }
        return table;
    }

    /** Each image's patches as one sequence, for bidirectional attention within it. */
    private static ForwardBatch sequences(List<int[]> grids, int tokens) {
        int images = grids.size();
        int[] positions = new int[tokens];
        int[] starts = new int[images + 1];
        int[] lengths = new int[images];
        for (int i = 0, at = 0; i < images; i++) {
            lengths[i] = grids.get(i)[0] * grids.get(i)[1];
            for (int j = 0; j < lengths[i]; j++) positions[at++] = j;
            starts[i + 1] = starts[i] + lengths[i];
        }
        return new ForwardBatch(new int[tokens], positions, new int[tokens], starts, lengths, new int[images][0], 1, new int[0]);
    }
}
