package dev.jvllm.models.vision;

import dev.jvllm.config.ConfigException;
import dev.jvllm.config.ModelConfig;
import dev.jvllm.engine.ForwardBatch;
import dev.jvllm.models.layers.GatedMlp;
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
import java.util.Arrays;
import java.util.List;
import java.util.Set;

/**
 * The vision transformer of Qwen2-VL and Qwen2.5-VL: patches of 2 frames × 14 × 14 pixels projected
 * (a 3-D convolution without a bias; a still image's two frames are the same, so the product runs
 * over one frame with the kernel's two frames summed), pre-norm layers whose attention turns each
 * head by a 2-D rotary embedding (the first half of its pairs by the patch's row, the second by its
 * column), then the merger: a norm, each 2 × 2 window of patches side by side, and a two-layer GELU
 * MLP into the language model's width. Qwen2-VL: LayerNorm and a quick-GELU MLP, attention over
 * the whole image. Qwen2.5-VL: RMSNorm and a gated SiLU MLP, attention within windows of {@code
 * window_size} pixels except in {@code fullatt_block_indexes} (the patches run in window order
 * through the layers, and the merged rows go back to the image's order).
 */
public final class Qwen2VisionTower {

    private final Backend backend;
    private final int width;
    private final int heads;
    private final int patch;
    private final int merge;
    /** Qwen2.5-VL: a window's side in merged patches; 0 for attention over the whole image. */
    private final int windowUnits;
    private final Set<Integer> wholeImageLayers;
    private final Tensor patchWeight;
    private final List<VisionEncoderLayer> layers = new ArrayList<>();
    private final Norm mergerNorm;
    private final Linear mergerIn;
    private final Linear mergerOut;
    private final AttentionParams attention;
    private final double[] invFreq;
    private final Scratch scratch;

    public Qwen2VisionTower(ModelConfig vision, WeightScope scope) {
        this.backend = scope.backend();
        boolean windows = vision.raw().has("window_size") || vision.raw().has("fullatt_block_indexes");
        // Qwen2-VL: embed_dim wide, hidden_size out; Qwen2.5-VL: hidden_size wide, out_hidden_size out.
        this.width = windows ? vision.intOr(1280, "hidden_size") : vision.intOr(1280, "embed_dim");
        int outWidth = windows ? vision.intOr(3584, "out_hidden_size") : vision.intOr(3584, "hidden_size");
        this.heads = vision.intOr(16, "num_heads");
        int depth = vision.intOr(32, "depth");
        this.patch = vision.intOr(14, "patch_size");
        this.merge = vision.intOr(2, "spatial_merge_size");
        int temporal = vision.intOr(2, "temporal_patch_size");
        if (width < 1 || heads < 1 || width % heads != 0 || (width / heads) % 4 != 0 || merge != 2 || patch < 1 || temporal < 1
                || vision.intOr(3, "in_channels") != 3) {
            throw new ConfigException(vision.source() + ": width " + width + ", num_heads " + heads + ", spatial_merge_size "
                    + merge + ", patch_size " + patch + " and temporal_patch_size " + temporal + " do not make a Qwen2-VL vision "
                    + "tower (heads a multiple of 4 wide, 2 × 2 merges, positive patch sizes, 3 channels)");
        }
        int windowPixels = windows ? vision.intOr(112, "window_size") : 0;
        if (windows && (windowPixels < patch * merge || windowPixels % (patch * merge) != 0)) {
            throw new ConfigException(vision.source() + ": window_size " + windowPixels + " is not a multiple of "
                    + patch * merge + " pixels");
        }
        this.windowUnits = windowPixels / (patch * merge);
        this.wholeImageLayers = windows ? indexes(vision) : Set.of();
        int headDim = width / heads;
        Activation activation = Activation.fromConfig(vision.raw().path("hidden_act").asText(windows ? "silu" : "quick_gelu"));
        this.attention = AttentionParams.causal(heads, heads, headDim);
        double theta = vision.raw().path("rope_parameters").path("rope_theta").asDouble(10_000.0);
        this.invFreq = new double[headDim / 4];
        for (int i = 0; i < invFreq.length; i++) invFreq[i] = 1.0 / Math.pow(theta, (2.0 * i) / (headDim / 2.0));
        // The convolution over frames of one still image: its kernel summed over the temporal axis.
        float[] kernel = scope.child("patch_embed").child("proj").floats("weight", width, 3, temporal, patch, patch);
        int area = patch * patch;
        float[] summed = new float[width * 3 * area];
        for (int e = 0; e < width; e++) {
            for (int c = 0; c < 3; c++) {
                for (int t = 0; t < temporal; t++) {
                    int from = (((e * 3 + c) * temporal) + t) * area, to = (e * 3 + c) * area;
                    for (int k = 0; k < area; k++) summed[to + k] += kernel[from + k];
                }
            }
        }
        this.patchWeight = backend.constant(summed, width, 3 * area);
        for (int i = 0; i < depth; i++) {
            WeightScope block = scope.child("blocks").child(Integer.toString(i));
            WeightScope attn = block.child("attn");
            WeightScope mlp = block.child("mlp");
            layers.add(new VisionEncoderLayer(norm(block, "norm1", windows),
                    Linear.loadRowBlocks(attn, "qkv", width, true, width, width, width),
                    Linear.load(attn, "proj", width, width, true),
                    norm(block, "norm2", windows),
                    windows ? gated(mlp, vision.intOr(3420, "intermediate_size"), activation)
                            : Mlp.load(mlp, "fc1", "fc2", width, width * vision.intOr(4, "mlp_ratio"), activation, true)));
        }
        WeightScope merger = scope.child("merger");
        this.mergerNorm = norm(merger, "ln_q", windows);
        int window = width * merge * merge;
        this.mergerIn = Linear.load(merger.child("mlp"), "0", window, window, true);
        this.mergerOut = Linear.load(merger.child("mlp"), "2", window, outWidth, true);
        this.scratch = new Scratch(backend);
    }

    private static Set<Integer> indexes(ModelConfig vision) {
        var list = vision.raw().path("fullatt_block_indexes");
        if (list.isMissingNode()) return Set.of(7, 15, 23, 31);
        Set<Integer> indexes = new java.util.HashSet<>();
        for (var index : list) indexes.add(index.asInt());
        return indexes;
    }

    private Norm norm(WeightScope scope, String name, boolean rms) {
        return rms ? RmsNorm.load(scope, name, width, 1e-6) : LayerNorm.load(scope, name, width, 1e-6);
    }

    private GatedMlp gated(WeightScope mlp, int intermediate, Activation activation) {
        Linear[] gateAndUp = Linear.loadSiblings(mlp, List.of("gate_proj", "up_proj"), width, true, intermediate, intermediate);
        return new GatedMlp(gateAndUp[0], gateAndUp[1], Linear.load(mlp, "down_proj", intermediate, width, true), activation);
    }

    public int patchSize() {
        return patch;
    }

    public int mergeSize() {
        return merge;
    }

    /**
     * The merged features of each image, [Σ patches / 4, language width] image after image, rows in
     * the image's order of merged patches (scratch memory, valid until the next call), from each
     * image's patches ([patches, 3 × patch²], merge window by merge window) and its grid of patches
     * ({height, width}).
     */
    public Tensor encode(List<float[]> patches, List<int[]> grids) {
        int unit = merge * merge;
        // The merged patches in the order the layers see them (window by window for Qwen2.5-VL), and the windows' lengths.
        List<Integer> windowLengths = new ArrayList<>();
        int[] units = runOrder(grids, windowLengths);
        int tokens = units.length * unit, rowWidth = 3 * patch * patch;
        float[] all = new float[tokens * rowWidth];
        int[] firstUnit = new int[grids.size() + 1];
        for (int i = 0; i < grids.size(); i++) firstUnit[i + 1] = firstUnit[i] + grids.get(i)[0] * grids.get(i)[1] / unit;
        for (int r = 0; r < units.length; r++) {
            int image = imageOf(firstUnit, units[r]);
            float[] source = patches.get(image);
            System.arraycopy(source, (units[r] - firstUnit[image]) * unit * rowWidth, all, r * unit * rowWidth, unit * rowWidth);
        }
        Tensor input = scratch.get("qwen2vit.patches", tokens, rowWidth);
        ClipVisionTower.asActivations(backend, backend.stepValues(all, tokens, rowWidth), input);
        Tensor x = scratch.get("qwen2vit.hidden", tokens, width);
        backend.linear(input, patchWeight, null, x);
        int headDim = width / heads;
        Tensor rotary = backend.stepValues(rotaryRows(grids, firstUnit, units), tokens, headDim);
        Tensor rows = backend.indices(iota(tokens));
        ForwardBatch wholeImages = VisionEncoderLayer.sequences(grids.stream().map(g -> g[0] * g[1]).toList());
        ForwardBatch windows = windowUnits == 0 ? wholeImages
                : VisionEncoderLayer.sequences(windowLengths.stream().map(n -> n * unit).toList());
        VisionEncoderLayer.QueryKeyStep rotate = (q, k, s) -> {
            backend.rotary(q, heads, headDim, headDim, true, rotary, rows);
            backend.rotary(k, heads, headDim, headDim, true, rotary, rows);
            return new Tensor[]{q, k};
        };
        for (int i = 0; i < layers.size(); i++) {
            layers.get(i).forward(backend, scratch, x, wholeImageLayers.contains(i) ? wholeImages : windows, attention, rotate);
        }
        Tensor normed = scratch.get("qwen2vit.merged", tokens, width);
        mergerNorm.apply(backend, x, normed);
        int merged = units.length;
        Tensor inner = scratch.get("qwen2vit.mergerInner", merged, mergerIn.outFeatures());
        mergerIn.applyActivated(backend, Activation.GELU, normed.reshape(merged, width * unit), inner);
        Tensor out = scratch.get("qwen2vit.out", merged, mergerOut.outFeatures());
        mergerOut.apply(backend, inner, out);
        if (windowUnits == 0) return out;
        int[] back = new int[merged];  // the row of merged patch u of the images' order
        for (int r = 0; r < merged; r++) back[units[r]] = r;
        Tensor ordered = scratch.get("qwen2vit.ordered", merged, mergerOut.outFeatures());
        backend.gatherRows(out, backend.indices(back), ordered);
        return ordered;
    }

    /**
     * The images' merged patches (numbered image after image, row by row within an image) in the
     * order the layers run them: as they are, or window by window (windows of windowUnits² merged
     * patches, row by row, the last row and column of windows cut short), each window's length added
     * to {@code windowLengths}.
     */
    private int[] runOrder(List<int[]> grids, List<Integer> windowLengths) {
        List<Integer> order = new ArrayList<>();
        int first = 0;
        for (int[] g : grids) {
            int rows = g[0] / merge, cols = g[1] / merge;
            if (windowUnits == 0) {
                for (int u = 0; u < rows * cols; u++) order.add(first + u);
            } else {
                for (int wy = 0; wy < rows; wy += windowUnits) {
                    for (int wx = 0; wx < cols; wx += windowUnits) {
                        int before = order.size();
                        for (int y = wy; y < Math.min(wy + windowUnits, rows); y++) {
                            for (int x = wx; x < Math.min(wx + windowUnits, cols); x++) order.add(first + y * cols + x);
                        }
                        windowLengths.add(order.size() - before);
                    }
                }
            }
            first += rows * cols;
        }
        return order.stream().mapToInt(Integer::intValue).toArray();
    }

    /** Each patch's rotary row (cosines, then sines, of its pairs): the first quarter of the head's features by row, the next by column. */
    private float[] rotaryRows(List<int[]> grids, int[] firstUnit, int[] units) {
        int headDim = width / heads, half = headDim / 2, quarter = invFreq.length, unit = merge * merge;
        float[] table = new float[units.length * unit * headDim];
        int token = 0;
        for (int u : units) {
            int image = imageOf(firstUnit, u);
            int local = u - firstUnit[image], unitsAcross = grids.get(image)[1] / merge;
            for (int within = 0; within < unit; within++, token++) {
                int row = (local / unitsAcross) * merge + within / merge;
                int column = (local % unitsAcross) * merge + within % merge;
                for (int i = 0; i < half; i++) {
                    double angle = (i < quarter ? row : column) * invFreq[i % quarter];
                    table[token * headDim + i] = (float) Math.cos(angle);
                    table[token * headDim + half + i] = (float) Math.sin(angle);
                }
            }
        }
        return table;
    }

    /** The image merged patch u belongs to, by the images' first merged patches (and one past the last). */
    private static int imageOf(int[] firstUnit, int u) {
        int found = Arrays.binarySearch(firstUnit, u);
        int image = found >= 0 ? found : -found - 2;
        while (firstUnit[image + 1] <= u) image++;  // past images without patches
        return image;
    }

    private static int[] iota(int n) {
        int[] values = new int[n];
        for (int i = 0; i < n; i++) values[i] = i;
        return values;
    }
}
