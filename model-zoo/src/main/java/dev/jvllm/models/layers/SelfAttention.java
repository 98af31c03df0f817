package dev.jvllm.models.layers;

import dev.jvllm.engine.ForwardBatch;
import dev.jvllm.spi.AttentionParams;
import dev.jvllm.spi.Backend;
import dev.jvllm.spi.KvCache;
import dev.jvllm.spi.KvCacheSpec;
import dev.jvllm.spi.Tensor;

/**
 * Multi-head / grouped-query self-attention over the paged KV cache, with rotary positions (or none,
 * when rotary is null: ALiBi models carry their positions in {@code params}). {@code qNorm}/{@code kNorm},
 * when present, normalize each head of the queries and keys before the rotation (Qwen3's QK-norm).
 */
public record SelfAttention(Linear q, Linear k, Linear v, Linear o, RmsNorm qNorm, RmsNorm kNorm,
                            RotaryEmbedding rotary, AttentionParams params, int layerIndex) implements Attention {

    /** Without QK-norm. */
    public SelfAttention(Linear q, Linear k, Linear v, Linear o, RotaryEmbedding rotary, AttentionParams params,
                         int layerIndex) {
        this(q, k, v, o, null, null, rotary, params, layerIndex);
    }

    /** This attention with {@code q_norm} and {@code k_norm} (one weight per head feature) under {@code scope}. */
    public SelfAttention withHeadNorms(WeightScope scope, double eps) {
        return withHeadNorms(scope, eps, 0f);
    }

    /** As above, each norm's weights plus {@code weightOffset} (Gemma 3's (1 + w)). */
    public SelfAttention withHeadNorms(WeightScope scope, double eps, float weightOffset) {
        return new SelfAttention(q, k, v, o, RmsNorm.load(scope, "q_norm", params.headDim(), eps, weightOffset),
                RmsNorm.load(scope, "k_norm", params.headDim(), eps, weightOffset), rotary, params, layerIndex);
    }

    @Override
    public KvCacheSpec cacheSpec(int layers, int numBlocks, int blockSize) {
        return new KvCacheSpec(layers, numBlocks, blockSize, params.numKvHeads(), params.headDim());
    }

    @Override
    public void forward(Backend backend, Tensor x, Tensor positions, KvCache cache, ForwardBatch batch,
                        Scratch scratch, Tensor out) {
        int tokens = x.rows();
        Tensor qs = scratch.get("attn.q", tokens, q.outFeatures());
        Tensor ks = scratch.get("attn.k", tokens, k.outFeatures());
        Tensor vs = scratch.get("attn.v", tokens, v.outFeatures());
        Tensor context = scratch.get("attn.context", tokens, q.outFeatures());
        if (rotary != null && qNorm == null && kNorm == null && q.plain() && k.plain() && v.plain()) {
            rotary.projectThenAttend(backend, x, new Tensor[]{q.weight(), k.weight(), v.weight()},
                    new Tensor[]{qs, ks, vs}, positions, cache, layerIndex, batch, params, context);
            o.apply(backend, context, out);
            return;
        }
        Linear.applyAll(backend, x, new Linear[]{q, k, v}, new Tensor[]{qs, ks, vs});
        Tensor queries = normalizeHeads(backend, qNorm, qs, params.numHeads(), scratch, "attn.q.normed");
        Tensor keys = normalizeHeads(backend, kNorm, ks, params.numKvHeads(), scratch, "attn.k.normed");
        if (rotary != null) {
            rotary.applyThenAttend(backend, queries, keys, vs, positions, cache, layerIndex, batch, params, context);
        } else {
            backend.attention(queries, keys, vs, cache, layerIndex, batch, params, context);
        }
        o.apply(backend, context, out);
    }

    /** x when there is no norm; else each head of x normalized on its own, in a scratch buffer. */
    private Tensor normalizeHeads(Backend backend, RmsNorm norm, Tensor x, int heads, Scratch scratch, String name) {
        if (norm == null) {
            return x;
        }
        int perHeadRows = x.rows() * heads;
        Tensor out = scratch.get(name, x.rows(), x.cols());
        norm.apply(backend, x.reshape(perHeadRows, params.headDim()), out.reshape(perHeadRows, params.headDim()));
        return out;
    }
}
