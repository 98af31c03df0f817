package dev.jvllm.models.layers;

import com.fasterxml.jackson.databind.JsonNode;
import dev.jvllm.config.ConfigException;
import dev.jvllm.config.RopeConfig;
import dev.jvllm.engine.ForwardBatch;
import dev.jvllm.spi.AttentionParams;
import dev.jvllm.spi.Backend;
import dev.jvllm.spi.KvCache;
import dev.jvllm.spi.Tensor;

import java.util.Arrays;

/**
 * Rotary position embedding (RoFormer, arXiv:2104.09864) with the context-extension schemes of
 * config.json: linear interpolation, dynamic NTK, Llama 3's frequency smoothing, YaRN
 * (arXiv:2309.00071) and Phi-3's LongRoPE (arXiv:2402.13753). Produces the cos/sin table the
 * backends' rotary kernel reads.
 */
public final class RotaryEmbedding {

    private final Tensor cosSin;
    private final int rotaryDim;
    private final boolean neoxStyle;
    /** LongRoPE: the first row of the long-context table (0 when there is one table). */
    private final int longRowsStart;
    /** LongRoPE: sequences longer than this use the long-context table. */
    private final int shortContextLimit;

    /** M-RoPE's sections (Qwen2-VL), where rope_parameters names {@code mrope_section}; else null. */
    private final MultimodalRope multimodal;
    /** This step's own rows where its tokens need rows the table lacks (M-RoPE's image tokens); else null. */
    private Tensor stepTable;

    private RotaryEmbedding(Tensor cosSin, int rotaryDim, boolean neoxStyle, int longRowsStart, int shortContextLimit,
                            MultimodalRope multimodal) {
        this.cosSin = cosSin;
        this.rotaryDim = rotaryDim;
        this.neoxStyle = neoxStyle;
        this.longRowsStart = longRowsStart;
        this.shortContextLimit = shortContextLimit;
        this.multimodal = multimodal;
    }

    /**
     * For M-RoPE: how the model lays an image's tokens out ({temporal, height, width} merged
     * patches), so that image tokens get their grid positions and later tokens the positions the
     * images saved. Without it (or without mrope_section) positions are the tokens' places.
     */
    public void bindImageGrid(java.util.function.Function<dev.jvllm.ImageInput, int[]> imageGrid) {
        if (multimodal == null) {
            throw new IllegalStateException("this rotary embedding has no mrope_section to lay images out with");
        }
        multimodal.bindImageGrid(imageGrid);
    }

    /** The table the step's rotations read: the position table, or the step's own rows. */
    private Tensor table() {
        return stepTable != null ? stepTable : cosSin;
    }

    /**
     * @param maxPositions positions the table covers (the engine's max model length)
     * @param neoxStyle    rotate pairs (i, i + d/2) as Llama does; false for GPT-J's adjacent pairs
     */
    public static RotaryEmbedding create(Backend backend, RopeConfig rope, int headDim, int maxPositions, boolean neoxStyle) {
        return create(backend, rope, rope.rotaryDim(headDim), maxPositions, neoxStyle, headDim);
    }

    /** As above, rotating the first {@code dim} features of each head (GPT-J's rotary_dim, ChatGLM's half). */
    public static RotaryEmbedding create(Backend backend, RopeConfig rope, int dim, int maxPositions, boolean neoxStyle,
                                         int headDim) {
        if (dim <= 0 || dim > headDim || dim % 2 != 0) {
            throw new ConfigException("rotary dimension " + dim + " must be even and at most the head size " + headDim);
        }
        double magnitude = attentionScaling(rope);
        if (rope.type().equals("longrope")) {
            // Two tables stacked: short-context frequencies, then long-context ones (see tableRows).
            float[] shortRows = table(longRopeFrequencies(rope, dim, "short_factor"), magnitude, maxPositions);
            float[] longRows = table(longRopeFrequencies(rope, dim, "long_factor"), magnitude, maxPositions);
            float[] both = Arrays.copyOf(shortRows, 2 * shortRows.length);
            System.arraycopy(longRows, 0, both, shortRows.length, longRows.length);
            return new RotaryEmbedding(backend.constant(both, 2 * maxPositions, dim), dim, neoxStyle, maxPositions,
                    rope.originalMaxPositions(), null);
        }
        double[] invFreq = inverseFrequencies(rope, dim, maxPositions);
        float[] table = table(invFreq, magnitude, maxPositions);
        JsonNode sections = rope.parameters().path("mrope_section");
        MultimodalRope multimodal = null;
        if (sections.isArray()) {
            int[] pairs = new int[sections.size()];
            for (int i = 0; i < pairs.length; i++) {
                JsonNode section = sections.get(i);
                if (!section.isInt() || section.asInt() < 0 || section.asInt() > dim / 2) {
                    throw new ConfigException("mrope_section " + sections + " must hold whole numbers of rotary pairs, each "
                            + "from 0 to " + dim / 2);
                }
                pairs[i] = section.asInt();
            }
            multimodal = new MultimodalRope(pairs, invFreq, magnitude);
        }
        return new RotaryEmbedding(backend.constant(table, maxPositions, dim), dim, neoxStyle, 0, Integer.MAX_VALUE, multimodal);
    }

    /** Rows of (dim/2 cosines, dim/2 sines) for positions 0 .. maxPositions-1, scaled by magnitude. */
    private static float[] table(double[] invFreq, double magnitude, int maxPositions) {
        int half = invFreq.length;
        int dim = 2 * half;
        float[] table = new float[maxPositions * dim];
        for (int p = 0; p < maxPositions; p++) {
            for (int i = 0; i < half; i++) {
                double angle = p * invFreq[i];
                table[p * dim + i] = (float) (Math.cos(angle) * magnitude);
                table[p * dim + half + i] = (float) (Math.sin(angle) * magnitude);
            }
        }
        return table;
    }

    /**
     * The table row of each token of the batch, for {@link #apply}: its position. With LongRoPE, every
     * token of a sequence longer than the original context reads the long-context rows, as
     * Transformers switches the whole sequence once it is longer.
     */
    public Tensor tableRows(Backend backend, ForwardBatch batch) {
        stepTable = null;
        if (multimodal != null) {
            MultimodalRope.Rows rows = multimodal.rows(batch);
            if (rows.ownRows() == null) return backend.indices(rows.positions());
            stepTable = backend.stepValues(rows.ownRows(), batch.numTokens(), rotaryDim);
            int[] own = new int[batch.numTokens()];
            for (int i = 0; i < own.length; i++) own[i] = i;
            return backend.indices(own);
        }
        int[] rows = batch.positions();
        if (longRowsStart > 0) {
            rows = rows.clone();
            for (int s = 0; s < batch.numSequences(); s++) {
                if (batch.contextLengths()[s] > shortContextLimit) {
                    for (int t = batch.queryStarts()[s]; t < batch.queryStarts()[s + 1]; t++) {
                        rows[t] += longRowsStart;
                    }
                }
            }
        }
        return backend.indices(rows);
    }

    /** Rotates the heads of x ([T, heads × headDim]) in place by their tokens' {@link #tableRows}. */
    public void apply(Backend backend, Tensor x, int heads, int headDim, Tensor positions) {
        backend.rotary(x, heads, headDim, rotaryDim, neoxStyle, table(), positions);
    }

    /**
     * {@link #apply} to a layer's queries and keys, then their attention: one backend call
     * ({@link Backend#rotaryAttention}), which may leave queries and keys unrotated.
     */
    public void applyThenAttend(Backend backend, Tensor queries, Tensor keys, Tensor values, Tensor positions,
                                KvCache cache, int layer, ForwardBatch batch, AttentionParams params, Tensor out) {
        backend.rotaryAttention(queries, keys, values, rotaryDim, neoxStyle, table(), positions, cache, layer, batch,
                params, out);
    }

    /** x projected by the q, k and v weights into the scratch qkv, rotated and attended ({@link Backend#projectedRotaryAttention}). */
    public void projectThenAttend(Backend backend, Tensor x, Tensor[] weights, Tensor[] qkv, Tensor positions,
                                  KvCache cache, int layer, ForwardBatch batch, AttentionParams params, Tensor out) {
        backend.projectedRotaryAttention(x, weights, qkv, rotaryDim, neoxStyle, table(), positions, cache, layer, batch,
                params, out);
    }

    static double[] inverseFrequencies(RopeConfig rope, int dim, int maxPositions) {
        double base = rope.theta();
        double factor = rope.factor();
        double[] inv = new double[dim / 2];
        if (rope.type().equals("dynamic")) {
            // vLLM's static form of dynamic NTK: the base is stretched once for the longest context.
            double original = rope.originalMaxPositions();
            double maxLen = Math.max(original * factor, maxPositions);
            base = base * Math.pow(factor * maxLen / original - (factor - 1), dim / (dim - 2.0));
        }
        for (int i = 0; i < inv.length; i++) {
            inv[i] = 1.0 / Math.pow(base, (2.0 * i) / dim);
        }
        switch (rope.type()) {
            case "default", "dynamic" -> { }
            case "linear" -> scale(inv, 1.0 / factor);
            case "llama3" -> llama3(inv, rope);
            case "yarn" -> yarn(inv, rope, dim);
            default -> throw new ConfigException("rope type '" + rope.type() + "' is not supported yet "
                    + "(supported: default, linear, dynamic, llama3, yarn, longrope)");
        }
        return inv;
    }

    private static void scale(double[] inv, double by) {
        for (int i = 0; i < inv.length; i++) inv[i] *= by;
    }

    /** Llama 3.1: long wavelengths are divided by the factor, short ones kept, the band between blended. */
    private static void llama3(double[] inv, RopeConfig rope) {
        double factor = rope.factor();
        double low = rope.param("low_freq_factor", 1.0);
        double high = rope.param("high_freq_factor", 4.0);
        double original = rope.originalMaxPositions();
        double lowFreqWavelen = original / low;
        double highFreqWavelen = original / high;
        for (int i = 0; i < inv.length; i++) {
            double wavelen = 2 * Math.PI / inv[i];
            if (wavelen > lowFreqWavelen) {
                inv[i] = inv[i] / factor;
            } else if (wavelen >= highFreqWavelen) {
                double smooth = (original / wavelen - low) / (high - low);
                inv[i] = (1 - smooth) * inv[i] / factor + smooth * inv[i];
            }
        }
    }

    /** YaRN: interpolate low frequencies, extrapolate high ones, with a linear ramp between. */
    private static void yarn(double[] inv, RopeConfig rope, int dim) {
        double factor = rope.factor();
        double base = rope.theta();
        double original = rope.originalMaxPositions();
        double low = Math.max(Math.floor(correctionDim(rope.param("beta_fast", 32), dim, base, original)), 0);
        double high = Math.min(Math.ceil(correctionDim(rope.param("beta_slow", 1), dim, base, original)), dim - 1);
        if (low == high) high += 0.001;
        for (int i = 0; i < inv.length; i++) {
            double ramp = Math.clamp((i - low) / (high - low), 0.0, 1.0);
            double extrapolationWeight = 1 - ramp;
            inv[i] = (inv[i] / factor) * (1 - extrapolationWeight) + inv[i] * extrapolationWeight;
        }
    }

    private static double correctionDim(double rotations, int dim, double base, double maxPositions) {
        return dim * Math.log(maxPositions / (rotations * 2 * Math.PI)) / (2 * Math.log(base));
    }

    /** LongRoPE: each frequency divided by its rescale factor, listed per pair of features. */
    static double[] longRopeFrequencies(RopeConfig rope, int dim, String factorsField) {
        JsonNode factors = rope.parameters().get(factorsField);
        if (factors == null || !factors.isArray() || factors.size() != dim / 2) {
            throw new ConfigException("longrope rope scaling needs '" + factorsField + "': a list of " + dim / 2
                    + " numbers (one per pair of rotated features), got " + factors);
        }
        double[] inv = new double[dim / 2];
        for (int i = 0; i < inv.length; i++) {
            inv[i] = 1.0 / (factors.get(i).asDouble() * Math.pow(rope.theta(), (2.0 * i) / dim));
        }
        return inv;
    }

    /** YaRN and LongRoPE scale cos and sin (and so the attention logits) by an attention factor. */
    static double attentionScaling(RopeConfig rope) {
        if (!rope.type().equals("yarn") && !rope.type().equals("longrope")) return 1.0;
        double given = rope.param("attention_factor", Double.NaN);
        if (!Double.isNaN(given)) return given;
        double factor = rope.factor();
        if (rope.type().equals("longrope")) {
            return factor <= 1 ? 1.0 : Math.sqrt(1 + Math.log(factor) / Math.log(rope.originalMaxPositions()));
        }
        double mscale = rope.param("mscale", Double.NaN);
        double mscaleAllDim = rope.param("mscale_all_dim", Double.NaN);
        if (!Double.isNaN(mscale) && !Double.isNaN(mscaleAllDim) && mscale != 0 && mscaleAllDim != 0) {
            return yarnMscale(factor, mscale) / yarnMscale(factor, mscaleAllDim);
        }
        return yarnMscale(factor, 1.0);
    }

    private static double yarnMscale(double scale, double mscale) {
        return scale <= 1 ? 1.0 : 0.1 * mscale * Math.log(scale) + 1.0;
    }
}
