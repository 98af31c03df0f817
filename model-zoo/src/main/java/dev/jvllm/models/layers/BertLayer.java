package dev.jvllm.models.layers;

import dev.jvllm.engine.ForwardBatch;
import dev.jvllm.spi.Activation;
import dev.jvllm.spi.AttentionParams;
import dev.jvllm.spi.Backend;
import dev.jvllm.spi.Tensor;

/**
 * One post-norm Transformer encoder layer as BERT lays it out (arXiv:1810.04805):
 * {@code x = LN(x + O(attention(Qx, Kx, Vx)))}, then {@code x = LN(x + W2 act(W1 x))}, with
 * bidirectional attention over each sequence. Weight names are BERT's
 * ({@code attention.self.query}, {@code attention.output.dense}, {@code intermediate.dense}, ...),
 * which RoBERTa and XLM-RoBERTa keep.
 */
public record BertLayer(Linear query, Linear key, Linear value, Linear attentionOutput, LayerNorm attentionNorm,
                        Linear intermediate, Linear output, LayerNorm outputNorm, AttentionParams params,
                        Activation activation) {

    public static BertLayer load(WeightScope layer, int hidden, int intermediateSize, AttentionParams params,
                                 Activation activation, double eps) {
        WeightScope attention = layer.child("attention");
        WeightScope self = attention.child("self");
        WeightScope attentionOut = attention.child("output");
        WeightScope out = layer.child("output");
        return new BertLayer(
                Linear.load(self, "query", hidden, hidden, true),
                Linear.load(self, "key", hidden, hidden, true),
                Linear.load(self, "value", hidden, hidden, true),
                Linear.load(attentionOut, "dense", hidden, hidden, true),
                LayerNorm.load(attentionOut, "LayerNorm", hidden, eps),
                Linear.load(layer.child("intermediate"), "dense", hidden, intermediateSize, true),
                Linear.load(out, "dense", intermediateSize, hidden, true),
                LayerNorm.load(out, "LayerNorm", hidden, eps),
                params, activation);
    }

    /** Updates the hidden states x ([tokens, hidden]) in place. */
    public void forward(Backend backend, Tensor x, ForwardBatch batch, Scratch scratch) {
        Tensor context = attend(backend, x, batch, scratch);
        finish(backend, x, context, scratch);
    }

    /**
     * The layer's output for the tokens listed in {@code rows} only ([count, hidden], from scratch):
     * every token of x still serves as a key and value, but past attention each token is on its
     * own, so a last layer whose other outputs are pooled away skips their projections and FFN.
     */
    public Tensor forwardRows(Backend backend, Tensor x, ForwardBatch batch, Tensor rows, int count, Scratch scratch) {
        Tensor context = attend(backend, x, batch, scratch);
        Tensor picked = scratch.get("bert.picked", count, x.cols());
        Tensor pickedContext = scratch.get("bert.pickedContext", count, x.cols());
        backend.gatherRows(x, rows, picked);
        backend.gatherRows(context, rows, pickedContext);
        finish(backend, picked, pickedContext, scratch);
        return picked;
    }

    /** The attention of every token of x over its sequence, before the output projection. */
    private Tensor attend(Backend backend, Tensor x, ForwardBatch batch, Scratch scratch) {
        int tokens = x.rows();
        int hidden = x.cols();
        Tensor q = scratch.get("bert.q", tokens, hidden);
        Tensor k = scratch.get("bert.k", tokens, hidden);
        Tensor v = scratch.get("bert.v", tokens, hidden);
        Tensor context = scratch.get("bert.context", tokens, hidden);
        Linear.applyAll(backend, x, new Linear[]{query, key, value}, new Tensor[]{q, k, v});
        backend.encoderAttention(q, k, v, batch, params, context);
        return context;
    }

    /** The rest of the layer, token by token, on x in place: the output projection and the FFN with their norms. */
    private void finish(Backend backend, Tensor x, Tensor context, Scratch scratch) {
        int tokens = x.rows();
        Tensor branch = scratch.get("bert.branch", tokens, x.cols());
        attentionOutput.applyPlusResidual(backend, context, x, branch);
        attentionNorm.apply(backend, branch, x);
        Tensor inner = scratch.get("bert.intermediate", tokens, intermediate.outFeatures());
        intermediate.applyActivated(backend, activation, x, inner);
        output.applyPlusResidual(backend, inner, x, branch);
        outputNorm.apply(backend, branch, x);
    }
}
