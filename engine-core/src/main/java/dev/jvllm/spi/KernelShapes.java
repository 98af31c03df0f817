package dev.jvllm.spi;

import dev.jvllm.engine.ForwardBatch;
import dev.jvllm.weights.DType;

import java.util.List;

/**
 * The shape and element-type rules of the {@link Backend} kernels that every backend checks the
 * same way, so that a wrong call fails with the same message on each. What makes a tensor an
 * activation, whether its storage overlaps another's, and which backend made it are each
 * backend's own checks, made before these.
 */
public final class KernelShapes {

    private KernelShapes() {
    }

    public static void requireType(String kernel, String role, Tensor t, DType type) {
        if (t.dtype() != type) {
            throw new IllegalArgumentException(kernel + ": " + role + " " + t + " must be " + type);
        }
    }

    /** Weights may be F32, BF16 or F16. */
    public static void requireWeightType(String kernel, String role, Tensor t) {
        if (t.dtype() != DType.F32 && t.dtype() != DType.BF16 && t.dtype() != DType.F16) {
            throw new IllegalArgumentException(kernel + ": " + role + " " + t + " must be F32, BF16 or F16");
        }
    }

    /** {@link Backend#embedding} and {@link Backend#gatherRows}: {@code out[i] = source[indices[i]]}. */
    public static void checkGather(String kernel, Tensor source, Tensor indices, Tensor out) {
        requireType(kernel, "indices", indices, DType.I32);
        requireWeightType(kernel, "source", source);
        int count = (int) indices.elementCount();
        if (out.rows() != count || out.cols() != source.cols()) {
            throw new IllegalArgumentException(kernel + ": out is " + out + " but " + count + " rows of "
                    + source.cols() + " were asked for");
        }
    }

    /** {@link Backend#linear}: out [T, N] = x [T, K] · weight [N, K]ᵀ + bias [N]. */
    /** The arrays of {@link Backend#linears}: one bias (or null) and one output per weight. */
    public static void checkLinears(Tensor[] weights, Tensor[] biases, Tensor[] outs) {
        if (weights.length != biases.length || weights.length != outs.length) {
            throw new IllegalArgumentException("linears: " + weights.length + " weights, " + biases.length
                    + " biases and " + outs.length + " outputs");
        }
    }

    public static void checkLinear(Tensor x, Tensor weight, Tensor bias, Tensor out) {
        requireWeightType("linear", "weight", weight);
        if (x.cols() != weight.cols()) {
            throw new IllegalArgumentException("linear: x " + x + " has " + x.cols()
                    + " features but weight " + weight + " takes " + weight.cols());
        }
        if (out.rows() != x.rows() || out.cols() != weight.rows()) {
            throw new IllegalArgumentException("linear: out is " + out + " but x · weightᵀ is "
                    + x.rows() + " × " + weight.rows());
        }
        if (bias != null) {
            requireWeightType("linear", "bias", bias);
            if (bias.elementCount() != weight.rows()) {
                throw new IllegalArgumentException("linear: bias " + bias + " does not have " + weight.rows() + " elements");
            }
        }
    }

    /** {@link Backend#rmsNorm} and {@link Backend#layerNorm}: one weight (and bias) per feature, out shaped as x. */
    public static void checkRowwise(String kernel, Tensor x, Tensor weight, Tensor bias, Tensor out) {
        requireWeightType(kernel, "weight", weight);
        if (weight.elementCount() != x.cols() || (bias != null && bias.elementCount() != x.cols())) {
            throw new IllegalArgumentException(kernel + ": weight " + weight + (bias == null ? "" : " and bias " + bias)
                    + " must have one element per feature of x " + x);
        }
        if (bias != null) {
            requireWeightType(kernel, "bias", bias);
        }
        if (out.rows() != x.rows() || out.cols() != x.cols()) {
            throw new IllegalArgumentException(kernel + ": out " + out + " must have the shape of x " + x);
        }
    }

    /** The elementwise kernels: both inputs have as many elements as out. */
    public static void checkElementwise(String kernel, Tensor a, Tensor b, Tensor out) {
        if (a.elementCount() != out.elementCount() || b.elementCount() != out.elementCount()) {
            throw new IllegalArgumentException(kernel + ": " + a + ", " + b + " and out " + out
                    + " must have as many elements");
        }
    }

    /** {@link Backend#rotary}: x [T, heads × headDim], cosSin [positions, rotaryDim], one position per token. */
    public static void checkRotary(Tensor x, int heads, int headDim, int rotaryDim, Tensor cosSin, Tensor positions) {
        requireWeightType("rotary", "cosSin", cosSin);
        requireType("rotary", "positions", positions, DType.I32);
        if (x.cols() != heads * headDim) {
            throw new IllegalArgumentException("rotary: x " + x + " is not " + heads + " heads of " + headDim);
        }
        if (rotaryDim <= 0 || rotaryDim > headDim || rotaryDim % 2 != 0 || cosSin.cols() != rotaryDim) {
            throw new IllegalArgumentException("rotary: rotary dim " + rotaryDim + " must be even, at most head dim "
                    + headDim + ", and the width of cosSin " + cosSin);
        }
        if (positions.elementCount() != x.rows()) {
            throw new IllegalArgumentException("rotary: " + positions.elementCount() + " positions for " + x.rows() + " tokens");
        }
    }

    /**
     * {@link Backend#attention}: q and out [T, heads × headDim], k and v [T, kvHeads × headDim], a
     * key-and-value cache of the same heads and block size holding {@code layer}, and an ALiBi slope
     * per head when there are slopes.
     */
    public static void checkAttention(Tensor q, Tensor k, Tensor v, KvCacheSpec spec, int layer, ForwardBatch batch,
                                      AttentionParams params, Tensor out) {
        int tokens = batch.numTokens();
        int qWidth = params.numHeads() * params.headDim();
        int kvWidth = params.numKvHeads() * params.headDim();
        if (q.rows() != tokens || q.cols() != qWidth || out.rows() != tokens || out.cols() != qWidth) {
            throw new IllegalArgumentException("attention: q " + q + " and out " + out + " must be "
                    + tokens + " × " + qWidth);
        }
        if (k.rows() != tokens || k.cols() != kvWidth || v.rows() != tokens || v.cols() != kvWidth) {
            throw new IllegalArgumentException("attention: k " + k + " and v " + v + " must be "
                    + tokens + " × " + kvWidth);
        }
        if (spec.layout() != KvCacheSpec.Layout.KEYS_AND_VALUES || spec.kvHeads() != params.numKvHeads()
                || spec.headDim() != params.headDim() || batch.blockSize() != spec.blockSize()
                || layer < 0 || layer >= spec.layers()) {
            throw new IllegalArgumentException("attention: layer " + layer + " with " + params + " and block size "
                    + batch.blockSize() + " does not fit the cache " + spec);
        }
        if (params.alibiSlopes() != null && params.alibiSlopes().length < params.numHeads()) {
            throw new IllegalArgumentException("attention: " + params.alibiSlopes().length + " ALiBi slopes for "
                    + params.numHeads() + " heads");
        }
        if (params.relativeBias() != null && (params.alibiSlopes() != null || params.slidingWindow() > 0)) {
            throw new IllegalArgumentException("attention: a relative position bias with ALiBi or a sliding window: " + params);
        }
    }

    /**
     * {@link Backend#encoderAttention}: q and out [T, heads × headDim], k and v [T, kvHeads × headDim];
     * no ALiBi and no sliding window (every token sees its whole sequence).
     */
    public static void checkEncoderAttention(Tensor q, Tensor k, Tensor v, ForwardBatch batch, AttentionParams params,
                                             Tensor out) {
        int tokens = batch.numTokens();
        int qWidth = params.numHeads() * params.headDim();
        int kvWidth = params.numKvHeads() * params.headDim();
        if (q.rows() != tokens || q.cols() != qWidth || out.rows() != tokens || out.cols() != qWidth
                || k.rows() != tokens || k.cols() != kvWidth || v.rows() != tokens || v.cols() != kvWidth) {
            throw new IllegalArgumentException("encoderAttention: q " + q + " and out " + out + " must be "
                    + tokens + " × " + qWidth + ", k " + k + " and v " + v + " " + tokens + " × " + kvWidth);
        }
        if (params.alibiSlopes() != null || params.slidingWindow() > 0) {
            throw new IllegalArgumentException("encoderAttention: ALiBi and sliding windows are not supported: " + params);
        }
    }

    /**
     * {@link Backend#crossAttention}: q and out [T, heads × headDim], keys and values of one shape
     * [rows, kvHeads × headDim], and a range of rows, each within them and at least one, per sequence.
     */
    public static void checkCrossAttention(Tensor q, Tensor keys, Tensor values, int[] ranges, int longestRange,
                                           ForwardBatch batch, AttentionParams params, Tensor out) {
        int tokens = batch.numTokens();
        int qWidth = params.numHeads() * params.headDim();
        int kvWidth = params.numKvHeads() * params.headDim();
        if (q.rows() != tokens || q.cols() != qWidth || out.rows() != tokens || out.cols() != qWidth
                || keys.cols() != kvWidth || values.cols() != kvWidth || keys.rows() != values.rows()) {
            throw new IllegalArgumentException("crossAttention: q " + q + " and out " + out + " must be " + tokens + " × "
                    + qWidth + ", keys " + keys + " and values " + values + " alike and " + kvWidth + " wide");
        }
        if (ranges.length != 2 * batch.numSequences()) {
            throw new IllegalArgumentException("crossAttention: " + ranges.length + " range ids for " + batch.numSequences()
                    + " sequences");
        }
        for (int s = 0; s < batch.numSequences(); s++) {
            if (ranges[2 * s] < 0 || ranges[2 * s + 1] < 1 || (long) ranges[2 * s] + ranges[2 * s + 1] > keys.rows()) {
                throw new IllegalArgumentException("crossAttention: sequence " + s + "'s rows [" + ranges[2 * s] + ", +"
                        + ranges[2 * s + 1] + ") are not within the " + keys.rows() + " rows of keys");
            }
            if (ranges[2 * s + 1] > longestRange) {
                throw new IllegalArgumentException("crossAttention: sequence " + s + "'s " + ranges[2 * s + 1]
                        + " rows are more than the longest range given, " + longestRange);
            }
        }
        if (params.alibiSlopes() != null || params.slidingWindow() > 0 || params.logitSoftcap() > 0 || params.relativeBias() != null) {
            throw new IllegalArgumentException("crossAttention: ALiBi, sliding windows, soft-capping and relative position biases "
                    + "are not supported: " + params);
        }
    }

    /**
     * {@link Backend#latentAttention}: latent [T, r] with r = {@code params.headDim()}, keyRope
     * [T, d_R], qLatent and out [T, heads × r], qRope [T, heads × d_R], and a latent cache of rows
     * r + d_R and the batch's block size holding {@code layer}.
     */
    public static void checkLatentAttention(Tensor qLatent, Tensor qRope, Tensor latent, Tensor keyRope,
                                            KvCacheSpec spec, int layer, ForwardBatch batch, AttentionParams params,
                                            Tensor out) {
        String kernel = "latentAttention";
        int tokens = batch.numTokens();
        int heads = params.numHeads();
        int rank = params.headDim();
        int ropeDim = keyRope.cols();
        if (latent.rows() != tokens || latent.cols() != rank || keyRope.rows() != tokens) {
            throw new IllegalArgumentException(kernel + ": latent " + latent + " must be " + tokens + " × " + rank
                    + " and keyRope " + keyRope + " have " + tokens + " rows");
        }
        if (qLatent.rows() != tokens || qLatent.cols() != heads * rank || out.rows() != tokens
                || out.cols() != heads * rank) {
            throw new IllegalArgumentException(kernel + ": qLatent " + qLatent + " and out " + out + " must be "
                    + tokens + " × " + heads * rank);
        }
        if (qRope.rows() != tokens || qRope.cols() != heads * ropeDim) {
            throw new IllegalArgumentException(kernel + ": qRope " + qRope + " must be " + tokens + " × " + heads * ropeDim);
        }
        if (spec.layout() != KvCacheSpec.Layout.LATENT || spec.headDim() != rank + ropeDim
                || batch.blockSize() != spec.blockSize() || layer < 0 || layer >= spec.layers()) {
            throw new IllegalArgumentException(kernel + ": layer " + layer + " with latent rows of " + rank + " + "
                    + ropeDim + " and block size " + batch.blockSize() + " does not fit the cache " + spec);
        }
        if (params.relativeBias() != null) {
            throw new IllegalArgumentException(kernel + ": a relative position bias is not supported: " + params);
        }
    }

    /** {@link Backend#scatterAddRows}: one row index and one weight per source row, out as wide as source. */
    public static void checkScatterAddRows(Tensor source, Tensor rows, Tensor weights, Tensor out) {
        requireType("scatterAddRows", "rows", rows, DType.I32);
        requireWeightType("scatterAddRows", "weights", weights);
        int count = source.rows();
        if (rows.elementCount() != count || weights.elementCount() != count || out.cols() != source.cols()) {
            throw new IllegalArgumentException("scatterAddRows: " + source + " needs one row index and one weight per row ("
                    + rows + ", " + weights + ") and out " + out + " of " + source.cols() + " columns");
        }
    }

    /** {@link Backend#headwiseLinear}: x and weight split into heads, out [T, heads × outPerHead]; returns outPerHead. */
    public static int checkHeadwiseLinear(Tensor x, Tensor weight, int heads, Tensor out) {
        requireWeightType("headwiseLinear", "weight", weight);
        if (heads <= 0 || x.cols() % heads != 0 || weight.rows() % heads != 0) {
            throw new IllegalArgumentException("headwiseLinear: x " + x + " and weight " + weight
                    + " do not split into " + heads + " heads");
        }
        int in = x.cols() / heads;
        int outPerHead = weight.rows() / heads;
        if (weight.cols() != in || out.rows() != x.rows() || out.cols() != heads * outPerHead) {
            throw new IllegalArgumentException("headwiseLinear: weight " + weight + " must take " + in
                    + " features per head and out " + out + " be " + x.rows() + " × " + heads * outPerHead);
        }
        return outPerHead;
    }

    /** {@link Backend#routeSoftmaxTopK}: logits [T, E], experts and weights [T, k] with 0 < k ≤ E. */
    public static void checkRouting(Tensor logits, int topK, Tensor experts, Tensor weights) {
        requireType("routeSoftmaxTopK", "experts", experts, DType.I32);
        if (topK <= 0 || topK > logits.cols()) {
            throw new IllegalArgumentException("routeSoftmaxTopK: cannot choose " + topK + " of " + logits.cols() + " experts");
        }
        if (experts.rows() != logits.rows() || experts.cols() != topK || weights.rows() != logits.rows()
                || weights.cols() != topK) {
            throw new IllegalArgumentException("routeSoftmaxTopK: experts " + experts + " and weights " + weights
                    + " must both be " + logits.rows() + " × " + topK);
        }
    }

    /** {@link Backend#expertWeights}: E experts, each gate and up [I, H], down [H, I]. */
    public static void checkExpertWeights(List<? extends Tensor> gates, List<? extends Tensor> ups,
                                          List<? extends Tensor> downs) {
        if (gates.isEmpty() || gates.size() != ups.size() || gates.size() != downs.size()) {
            throw new IllegalArgumentException("expertWeights: " + gates.size() + " gate, " + ups.size() + " up and "
                    + downs.size() + " down projections do not make a set of experts");
        }
        int intermediate = gates.getFirst().rows(), hidden = gates.getFirst().cols();
        for (int e = 0; e < gates.size(); e++) {
            Tensor gate = gates.get(e), up = ups.get(e), down = downs.get(e);
            requireWeightType("expertWeights", "gate", gate);
            requireWeightType("expertWeights", "up", up);
            requireWeightType("expertWeights", "down", down);
            if (gate.rows() != intermediate || gate.cols() != hidden || up.rows() != intermediate
                    || up.cols() != hidden || down.rows() != hidden || down.cols() != intermediate) {
                throw new IllegalArgumentException("expertWeights: expert " + e + " (gate " + gate + ", up " + up
                        + ", down " + down + ") is not of [" + intermediate + ", " + hidden + "] and ["
                        + hidden + ", " + intermediate + "] projections like expert 0");
            }
        }
    }

    /** {@link Backend#expertFeedForward}: x and out [T, H], expert ids and weights [T, k]. */
    public static void checkExpertFeedForward(Tensor x, ExpertWeights experts, Tensor expertIds, Tensor weights,
                                              Tensor out) {
        requireType("expertFeedForward", "expert ids", expertIds, DType.I32);
        requireWeightType("expertFeedForward", "weights", weights);
        if (x.cols() != experts.hidden() || out.rows() != x.rows() || out.cols() != x.cols()) {
            throw new IllegalArgumentException("expertFeedForward: x " + x + " and out " + out
                    + " must both be [T, " + experts.hidden() + "]");
        }
        if (expertIds.rows() != x.rows() || weights.rows() != x.rows() || weights.cols() != expertIds.cols()
                || expertIds.cols() <= 0) {
            throw new IllegalArgumentException("expertFeedForward: expert ids " + expertIds + " and weights " + weights
                    + " must both be " + x.rows() + " × k");
        }
    }

    /** {@link Backend#addSigmoidGatedRows}: source and out alike, one gate value per row. */
    public static void checkSigmoidGatedRows(Tensor source, Tensor gate, Tensor out) {
        if (out.rows() != source.rows() || out.cols() != source.cols() || gate.rows() != source.rows()
                || gate.cols() != 1) {
            throw new IllegalArgumentException("addSigmoidGatedRows: source " + source + ", gate " + gate + " and out "
                    + out + " must be [T, H], [T, 1] and [T, H]");
        }
    }
}
