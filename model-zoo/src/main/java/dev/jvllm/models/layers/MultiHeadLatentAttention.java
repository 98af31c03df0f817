package dev.jvllm.models.layers;

import dev.jvllm.config.ModelConfig;
import dev.jvllm.config.RopeConfig;
import dev.jvllm.engine.ForwardBatch;
import dev.jvllm.spi.AttentionParams;
import dev.jvllm.spi.Backend;
import dev.jvllm.spi.KvCache;
import dev.jvllm.spi.KvCacheSpec;
import dev.jvllm.spi.Tensor;
import dev.jvllm.weights.WeightTensor;
import dev.jvllm.weights.WeightValues;
import dev.jvllm.weights.WeightsException;

import java.util.Arrays;

/**
 * Multi-head latent attention (DeepSeek-V2, arXiv:2405.04434 §2.1): keys and values of every head
 * are up-projections of one latent vector per token {@code c = norm(W_DKV x)} of rank r, plus one
 * rotary key {@code k_R} shared by all heads; queries come from x directly or through their own
 * low-rank bottleneck. The cache holds only {@code [c ; k_R]} per token.
 *
 * <p>The key and value up-projections are absorbed (§2.1.2's observation, as vLLM and FlashMLA do):
 * with {@code W_UK_h} [d_nope, r] and {@code W_UV_h} [d_v, r] the rows of {@code kv_b_proj} for head h,
 * {@code q_nope_h · (W_UK_h c) = (W_UK_hᵀ q_nope_h) · c}, so each head's query is mapped into the
 * latent space, attention runs over the cached latents themselves, and the latent result is mapped
 * to the head's value by {@code W_UV_h}. Nothing per head is ever expanded from the cache.
 *
 * @param qDown      q_a_proj [qRank, hidden]; null when queries come straight from x (q_lora_rank null)
 * @param qDownNorm  q_a_layernorm; null with qDown
 * @param qNope      the non-rotary query rows of q_b_proj (or q_proj), [heads × d_nope, in]
 * @param qRope      its rotary query rows, [heads × d_R, in]
 * @param kvDown     the latent rows of kv_a_proj_with_mqa, [r, hidden]
 * @param keyRope    its rotary key rows, [d_R, hidden]
 * @param kvNorm     kv_a_layernorm
 * @param keyAbsorb  W_UK_hᵀ stacked, [heads × r, d_nope]
 * @param valueUp    W_UV_h stacked, [heads × d_v, r]
 * @param params     heads, one latent "kv head" of width r, and the softmax scale
 */
public record MultiHeadLatentAttention(Linear qDown, RmsNorm qDownNorm, Linear qNope, Linear qRope, Linear kvDown,
                                       Linear keyRope, RmsNorm kvNorm, Tensor keyAbsorb, Tensor valueUp, Linear o,
                                       RotaryEmbedding rotary, int ropeDim, int valueDim, AttentionParams params,
                                       int layerIndex) implements Attention {

    /** DeepSeek's q_a_layernorm and kv_a_layernorm keep the RMSNorm default, not rms_norm_eps. */
    private static final double LATENT_NORM_EPS = 1e-6;

    /** The shapes of a DeepSeek config. */
    public record Shape(int hidden, int heads, int qRank, int kvRank, int nopeDim, int ropeDim, int valueDim,
                        boolean bias) {

        public static Shape of(ModelConfig config) {
            String feature = "multi-head latent attention";
            return new Shape(config.hiddenSize(), config.numHeads(), config.intOr(0, "q_lora_rank"),
                    ConfigValues.positiveInt(config, "kv_lora_rank", feature),
                    ConfigValues.positiveInt(config, "qk_nope_head_dim", feature),
                    ConfigValues.positiveInt(config, "qk_rope_head_dim", feature),
                    ConfigValues.positiveInt(config, "v_head_dim", feature),
                    config.bool("attention_bias", false));
        }

        int qkDim() {
            return nopeDim + ropeDim;
        }
    }

    /**
     * The loader of every layer's {@code self_attn}: one rotary table over {@code qk_rope_head_dim}
     * features for all layers, rotating adjacent pairs unless {@code neoxStyle}; the softmax scale
     * {@code 1/√(d_nope + d_R)}, times {@code mscale²} under YaRN with {@code mscale_all_dim} set, where
     * {@code mscale = 0.1 · mscale_all_dim · ln(factor) + 1} (DeepSeek's yarn_get_mscale).
     */
    public static LayerPartLoader<Attention> loader(ModelConfig config, boolean neoxStyle) {
        Shape shape = Shape.of(config);
        RopeConfig rope = config.rope();
        float scale = (float) (softmaxScaleFactor(rope) / Math.sqrt(shape.qkDim()));
        RotaryEmbedding[] rotary = new RotaryEmbedding[1];
        return (model, layer, index) -> {
            if (rotary[0] == null) {
                rotary[0] = RotaryEmbedding.create(model.backend(), rope, shape.ropeDim(), model.maxModelLen(), neoxStyle,
                        shape.ropeDim());
            }
            return load(layer.child("self_attn"), shape, rotary[0], scale, index);
        };
    }

    static double softmaxScaleFactor(RopeConfig rope) {
        double mscaleAllDim = rope.param("mscale_all_dim", 0);
        if (rope.type().equals("default") || mscaleAllDim == 0 || rope.factor() <= 1) {
            return 1;
        }
        double mscale = 0.1 * mscaleAllDim * Math.log(rope.factor()) + 1;
        return mscale * mscale;
    }

    /** The projections under {@code scope} (a layer's {@code self_attn}). */
    public static MultiHeadLatentAttention load(WeightScope scope, Shape shape, RotaryEmbedding rotary, float scale,
                                                int layerIndex) {
        int heads = shape.heads();
        Linear qDown = null;
        RmsNorm qDownNorm = null;
        String qName = "q_proj";
        int qIn = shape.hidden();
        if (shape.qRank() > 0) {
            qDown = Linear.load(scope, "q_a_proj", shape.hidden(), shape.qRank(), shape.bias());
            qDownNorm = RmsNorm.load(scope, "q_a_layernorm", shape.qRank(), LATENT_NORM_EPS);
            qName = "q_b_proj";
            qIn = shape.qRank();
        }
        Tensor[] q = perHeadBlocks(scope, qName, heads, qIn, shape.nopeDim(), shape.ropeDim());
        Linear[] kvA = Linear.loadRowBlocks(scope, "kv_a_proj_with_mqa", shape.hidden(), shape.bias(),
                shape.kvRank(), shape.ropeDim());
        Tensor[] kvB = perHeadBlocks(scope, "kv_b_proj", heads, shape.kvRank(), shape.nopeDim(), shape.valueDim());
        Tensor keyAbsorb = transposedPerHead(scope, kvB[0], heads, shape.nopeDim(), shape.kvRank());
        AttentionParams params = new AttentionParams(heads, 1, shape.kvRank(), scale, 0, 0f, null);
        return new MultiHeadLatentAttention(qDown, qDownNorm,
                new Linear(q[0], null, qIn, heads * shape.nopeDim()), new Linear(q[1], null, qIn, heads * shape.ropeDim()),
                kvA[0], kvA[1], RmsNorm.load(scope, "kv_a_layernorm", shape.kvRank(), LATENT_NORM_EPS),
                keyAbsorb, kvB[1], Linear.load(scope, "o_proj", heads * shape.valueDim(), shape.hidden(), shape.bias()),
                rotary, shape.ropeDim(), shape.valueDim(), params, layerIndex);
    }

    /**
     * {@code <name>.weight} [heads × Σ rowsPerHead, in], whose rows are per head a block of each
     * part, regrouped as one contiguous matrix per part ([heads × rows_part, in]).
     */
    private static Tensor[] perHeadBlocks(WeightScope scope, String name, int heads, int in, int... rowsPerHead) {
        int perHead = Arrays.stream(rowsPerHead).sum();
        WeightTensor t = scope.checkpoint().get(scope.prefix() + name + ".weight");
        long[] expected = {(long) heads * perHead, in};
        if (!Arrays.equals(t.shape(), expected)) {
            throw new WeightsException("tensor '" + t.name() + "' has shape " + Arrays.toString(t.shape())
                    + ", expected " + Arrays.toString(expected));
        }
        float[] all = WeightValues.floats(t);
        Tensor[] parts = new Tensor[rowsPerHead.length];
        int offset = 0;
        for (int p = 0; p < rowsPerHead.length; p++) {
            int rows = rowsPerHead[p];
            float[] part = new float[heads * rows * in];
            for (int h = 0; h < heads; h++) {
                System.arraycopy(all, (h * perHead + offset) * in, part, h * rows * in, rows * in);
            }
            parts[p] = scope.backend().constant(part, heads * rows, in);
            offset += rows;
        }
        return parts;
    }

    /** Per head, the transpose of its [rows, cols] block of {@code blocks} ([heads × rows, cols]): [heads × cols, rows]. */
    private static Tensor transposedPerHead(WeightScope scope, Tensor blocks, int heads, int rows, int cols) {
        float[] values = scope.backend().toFloatArray(blocks);
        float[] out = new float[values.length];
        for (int h = 0; h < heads; h++) {
            int base = h * rows * cols;
            for (int r = 0; r < rows; r++) {
                for (int c = 0; c < cols; c++) {
                    out[base + c * rows + r] = values[base + r * cols + c];
                }
            }
        }
        return scope.backend().constant(out, heads * cols, rows);
    }

    @Override
    public KvCacheSpec cacheSpec(int layers, int numBlocks, int blockSize) {
        return KvCacheSpec.latent(layers, numBlocks, blockSize, params.headDim() + ropeDim);
    }

    @Override
    public void forward(Backend backend, Tensor x, Tensor positions, KvCache cache, ForwardBatch batch, Scratch scratch,
                        Tensor out) {
        int tokens = x.rows();
        int heads = params.numHeads();
        int rank = params.headDim();
        Tensor queryInput = x;
        if (qDown != null) {
            Tensor down = scratch.get("mla.q.down", tokens, qDown.outFeatures());
            queryInput = scratch.get("mla.q.down.normed", tokens, qDown.outFeatures());
            qDown.apply(backend, x, down);
            qDownNorm.apply(backend, down, queryInput);
        }
        Tensor queryNope = scratch.get("mla.q.nope", tokens, qNope.outFeatures());
        Tensor queryRope = scratch.get("mla.q.rope", tokens, qRope.outFeatures());
        qNope.apply(backend, queryInput, queryNope);
        qRope.apply(backend, queryInput, queryRope);
        Tensor latentRaw = scratch.get("mla.latent.raw", tokens, rank);
        Tensor latent = scratch.get("mla.latent", tokens, rank);
        Tensor keyRopes = scratch.get("mla.k.rope", tokens, ropeDim);
        kvDown.apply(backend, x, latentRaw);
        kvNorm.apply(backend, latentRaw, latent);
        keyRope.apply(backend, x, keyRopes);
        rotary.apply(backend, queryRope, heads, ropeDim, positions);
        rotary.apply(backend, keyRopes, 1, ropeDim, positions);
        Tensor queryLatent = scratch.get("mla.q.latent", tokens, heads * rank);
        backend.headwiseLinear(queryNope, keyAbsorb, heads, queryLatent);
        Tensor contextLatent = scratch.get("mla.context.latent", tokens, heads * rank);
        backend.latentAttention(queryLatent, queryRope, latent, keyRopes, cache, layerIndex, batch, params, contextLatent);
        Tensor context = scratch.get("mla.context", tokens, heads * valueDim);
        backend.headwiseLinear(contextLatent, valueUp, heads, context);
        o.apply(backend, context, out);
    }
}
