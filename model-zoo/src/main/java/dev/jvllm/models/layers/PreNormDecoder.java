package dev.jvllm.models.layers;

import dev.jvllm.config.ModelConfig;
import dev.jvllm.engine.ForwardBatch;
import dev.jvllm.models.layers.DecoderOptions.Feature;
import dev.jvllm.pooling.PoolingType;
import dev.jvllm.spi.Backend;
import dev.jvllm.spi.CausalLM;
import dev.jvllm.spi.KvCache;
import dev.jvllm.spi.KvCacheSpec;
import dev.jvllm.spi.ModelContext;
import dev.jvllm.spi.PoolingModel;
import dev.jvllm.spi.Tensor;

import java.util.ArrayList;
import java.util.List;

/**
 * The decoder-only transformer of Llama and the families that vary it: token embedding, pre-norm
 * blocks of rotary grouped-query attention and a gated MLP, a final RMSNorm and the LM head (the
 * embedding matrix when tied). Checkpoint names are Llama's ({@code model.layers.N.self_attn.q_proj},
 * ...); what a family changes is stated by its {@link DecoderOptions}.
 *
 * <p>The same forward serves as an embedder ({@link PoolingModel}, as vLLM's pooling runner on a
 * decoder): {@link #hiddenStates} stops before the LM head and returns every token's final-normed
 * state, pooled by the engine (the last token's by default). Loaded without its head, it also reads
 * checkpoints saved by Transformers' headless classes ({@code MistralModel}: no {@code model.} prefix).
 */
public final class PreNormDecoder implements CausalLM, PoolingModel {

    private final Backend backend;
    private final ModelConfig config;
    private final DecoderOptions options;
    private final int hidden;
    private final int vocab;
    private final int maxModelLen;
    private final Tensor embedTokens;
    private final RotaryEmbedding rotary;
    private final List<DecoderLayer> layers = new ArrayList<>();
    private final Norm finalNorm;
    /** Null when loaded without its head (only {@link #hiddenStates} runs). */
    private final Linear lmHead;
    private final Scratch scratch;

    /** The causal LM of a {@code *ForCausalLM} checkpoint: decoder under {@code model.}, and the LM head. */
    public PreNormDecoder(ModelContext context, DecoderOptions options) {
        this(context, options, "model", true);
    }

    /**
     * @param prefix   where the decoder's weights live: "model", or "" in checkpoints saved without
     *                 their head (Transformers' {@code LlamaModel}, {@code MistralModel}, {@code Qwen2Model})
     * @param withHead whether to load the LM head; {@link #forward} needs it, {@link #hiddenStates} does not
     */
    public PreNormDecoder(ModelContext context, DecoderOptions options, String prefix, boolean withHead) {
        this.backend = context.backend();
        this.config = context.config();
        this.options = options;
        this.hidden = config.hiddenSize();
        this.vocab = config.vocabSize();
        this.maxModelLen = context.maxModelLen();
        this.rotary = RotaryEmbedding.create(backend, config.rope(), config.headDim(), context.maxModelLen(), true);
        WeightScope root = WeightScope.root(context.checkpoint(), backend);
        WeightScope model = prefix.isEmpty() ? root : root.child(prefix);
        this.embedTokens = model.child("embed_tokens").tensor("weight", vocab, hidden);
        for (int i = 0; i < config.numLayers(); i++) {
            layers.add(loadLayer(model.child("layers").child(Integer.toString(i)), i));
        }
        this.finalNorm = norm(model, "norm");
        this.lmHead = !withHead ? null : config.tieWordEmbeddings() || !root.has("lm_head.weight")
                ? new Linear(embedTokens, null, hidden, vocab)
                : Linear.load(root, "lm_head", hidden, vocab, false);
        this.scratch = new Scratch(backend);
    }

    private DecoderLayer loadLayer(WeightScope layer, int index) {
        WeightScope attentionScope = layer.child("self_attn");
        var params = options.attentionParams(config, index);
        SelfAttention attention = options.has(Feature.FUSED_PROJECTIONS)
                ? SelfAttention.loadFused(attentionScope, "qkv_proj", hidden, params, rotary, index)
                : SelfAttention.load(attentionScope, hidden, params, options.qkvBias(), options.outputBias(), rotary, index);
        if (options.has(Feature.QK_NORM)) {
            attention = attention.withHeadNorms(attentionScope, config.rmsNormEps());
        }
        WeightScope mlpScope = layer.child("mlp");
        GatedMlp mlp = options.has(Feature.FUSED_PROJECTIONS)
                ? GatedMlp.loadFused(mlpScope, "gate_up_proj", hidden, config.intermediateSize(), options.mlpActivation())
                : GatedMlp.load(mlpScope, hidden, config.intermediateSize(), options.mlpBias(), options.mlpActivation());
        if (options.has(Feature.SANDWICH_NORMS)) {
            return new DecoderLayer(norm(layer, "input_layernorm"), attention, norm(layer, "post_attention_layernorm"),
                    norm(layer, "pre_feedforward_layernorm"), mlp, norm(layer, "post_feedforward_layernorm"),
                    DecoderLayer.Residual.SEQUENTIAL);
        }
        // Llama's "post_attention_layernorm" is the norm before the MLP.
        return new DecoderLayer(norm(layer, "input_layernorm"), attention,
                norm(layer, "post_attention_layernorm"), mlp, DecoderLayer.Residual.SEQUENTIAL);
    }

    private Norm norm(WeightScope scope, String name) {
        return RmsNorm.load(scope, name, hidden, config.rmsNormEps(), options.normWeightOffset());
    }

    @Override
    public KvCacheSpec kvCacheSpec(int numBlocks, int blockSize) {
        return new KvCacheSpec(layers.size(), numBlocks, blockSize, config.numKvHeads(), config.headDim());
    }

    @Override
    public int vocabSize() {
        return vocab;
    }

    @Override
    public int hiddenSize() {
        return hidden;
    }

    @Override
    public int maxInputLength() {
        return maxModelLen;
    }

    /** A decoder embeds with its last token's state: the only one that has seen the whole input. */
    @Override
    public PoolingType defaultPooling() {
        return PoolingType.LAST;
    }

    /** The final-normed hidden state of every token of the batch, [tokens, hidden]: what the LM head reads. */
    @Override
    public Tensor hiddenStates(ForwardBatch batch, KvCache cache) {
        Tensor x = decode(batch, cache);
        Tensor normed = scratch.get("final.normed", batch.numTokens(), hidden);
        finalNorm.apply(backend, x, normed);
        return normed;
    }

    @Override
    public Tensor forward(ForwardBatch batch, KvCache cache) {
        if (lmHead == null) {
            throw new IllegalStateException("this decoder was loaded without its LM head (for embeddings) and cannot give logits");
        }
        Tensor x = decode(batch, cache);
        int wanted = batch.logitRows().length;
        Tensor last = scratch.get("last", wanted, hidden);
        backend.gatherRows(x, backend.indices(batch.logitRows()), last);
        Tensor lastNormed = scratch.get("last.normed", wanted, hidden);
        finalNorm.apply(backend, last, lastNormed);
        Tensor logits = scratch.get("logits", wanted, vocabSize());
        lmHead.apply(backend, lastNormed, logits);
        if (options.finalLogitSoftcap() > 0f) {
            backend.softcap(logits, options.finalLogitSoftcap(), logits);
        }
        return logits;
    }

    /** Embeddings and every layer: the residual stream before the final norm, [tokens, hidden]. */
    private Tensor decode(ForwardBatch batch, KvCache cache) {
        Tensor positions = rotary.tableRows(backend, batch);
        Tensor x = scratch.get("residual", batch.numTokens(), hidden);
        backend.embedding(embedTokens, backend.indices(batch.tokenIds()), x);
        if (options.embeddingScale() != 1f) {
            backend.scale(x, options.embeddingScale(), x);
        }
        for (DecoderLayer layer : layers) {
            layer.forward(backend, x, positions, cache, batch, scratch);
        }
        return x;
    }

    @Override
    public void close() {
    }
}
