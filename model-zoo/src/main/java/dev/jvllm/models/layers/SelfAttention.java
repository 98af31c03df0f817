package dev.jvllm.models.layers;

import dev.jvllm.engine.ForwardBatch;
import dev.jvllm.spi.AttentionParams;
import dev.jvllm.spi.Backend;
import dev.jvllm.spi.KvCache;
import dev.jvllm.spi.Tensor;

/**
 * Multi-head / grouped-query self-attention over the paged KV cache, with rotary positions (or none,
 * when rotary is null: ALiBi models carry their positions in {@code params}).
 */
public record SelfAttention(Linear q, Linear k, Linear v, Linear o, RotaryEmbedding rotary,
                            AttentionParams params, int layerIndex) {

    /** Llama-style projections {@code q_proj, k_proj, v_proj, o_proj} under {@code scope}. */
    public static SelfAttention load(WeightScope scope, int hidden, AttentionParams params, boolean bias,
                                     RotaryEmbedding rotary, int layerIndex) {
        int qSize = params.numHeads() * params.headDim();
        int kvSize = params.numKvHeads() * params.headDim();
        return new SelfAttention(
                Linear.load(scope, "q_proj", hidden, qSize, bias),
                Linear.load(scope, "k_proj", hidden, kvSize, bias),
                Linear.load(scope, "v_proj", hidden, kvSize, bias),
                Linear.load(scope, "o_proj", qSize, hidden, false),
                rotary, params, layerIndex);
    }

    public void forward(Backend backend, Tensor x, Tensor positions, KvCache cache, ForwardBatch batch,
                        Scratch scratch, Tensor out) {
        int tokens = x.rows();
        Tensor qs = scratch.get("attn.q", tokens, q.outFeatures());
        Tensor ks = scratch.get("attn.k", tokens, k.outFeatures());
        Tensor vs = scratch.get("attn.v", tokens, v.outFeatures());
        Tensor context = scratch.get("attn.context", tokens, q.outFeatures());
        q.apply(backend, x, qs);
        k.apply(backend, x, ks);
        v.apply(backend, x, vs);
        if (rotary != null) {
            rotary.apply(backend, qs, params.numHeads(), params.headDim(), positions);
            rotary.apply(backend, ks, params.numKvHeads(), params.headDim(), positions);
        }
        backend.attention(qs, ks, vs, cache, layerIndex, batch, params, context);
        o.apply(backend, context, out);
    }
}
