package dev.jvllm.models.layers;

import dev.jvllm.config.ModelConfig;
import dev.jvllm.engine.ForwardBatch;
import dev.jvllm.models.layers.DecoderOptions.Feature;
import dev.jvllm.models.layers.DecoderOptions.Positions;
import dev.jvllm.pooling.PoolingType;
import dev.jvllm.spi.AttentionParams;
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
 * blocks of rotary (or ALiBi) grouped-query attention and a gated MLP, a final RMSNorm and the LM
 * head (the embedding matrix when tied). What a family changes, its checkpoint names included
 * ({@link WeightNames}), is stated by its {@link DecoderOptions}.
 *
 * <p>The same forward serves as an embedder ({@link PoolingModel}, as vLLM's pooling runner on a
 * decoder): {@link #hiddenStates} stops before the LM head and returns every token's final-normed
 * state, pooled by the engine (the last token's by default). Loaded without its head, it also reads
 * checkpoints saved by Transformers' headless classes ({@code MistralModel}: no {@code model.} prefix).
 */
public final class PreNormDecoder implements CausalLM, PoolingModel {

    private final ModelContext context;
    private final Backend backend;
    private final ModelConfig config;
    private final DecoderOptions options;
    private final int hidden;
    private final int vocab;
    private final int maxModelLen;
    private final Tensor embedTokens;
    private final RotaryEmbedding rotary;
    /** The sliding-window layers' rotary table where it differs (Gemma 3); null otherwise. */
    private final RotaryEmbedding localRotary;
    private final List<DecoderLayer> layers = new ArrayList<>();
    private final Norm finalNorm;
    /** Null when loaded without its head (only {@link #hiddenStates} runs). */
    private final Linear lmHead;
    /** Null for token embeddings alone. */
    private final InputOverride inputOverride;
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
        this(context, options, prefix.isEmpty() ? options.names().withoutModelPrefix() : options.names(), withHead, null);
    }

    /**
     * A decoder whose model-level weights sit under {@code names} (a vision-language model's language
     * model), with {@code inputOverride} rewriting the embedded inputs before the first layer (null: none).
     */
    public PreNormDecoder(ModelContext context, DecoderOptions options, WeightNames names, boolean withHead,
                          InputOverride inputOverride) {
        this.context = context;
        this.inputOverride = inputOverride;
        this.backend = context.backend();
        this.config = context.config();
        this.options = options;
        this.hidden = config.hiddenSize();
        this.vocab = config.vocabSize();
        this.maxModelLen = context.maxModelLen();
        // ALiBi families have no rotary table; a family with its own attention brings its own
        // positions (DeepSeek's decoupled rotary key).
        this.rotary = options.positions() == Positions.ALIBI || options.attention() != null ? null
                : RotaryEmbedding.create(backend, config.rope(), config.headDim(), context.maxModelLen(),
                        options.positions() == Positions.ROTARY);
        // Its rows are the same positions as the global table's (both are plain position tables).
        this.localRotary = rotary == null || options.localRope() == null ? null
                : RotaryEmbedding.create(backend, options.localRope(), config.headDim(), context.maxModelLen(),
                        options.positions() == Positions.ROTARY);
        WeightScope root = WeightScope.root(context.checkpoint(), backend);
        this.embedTokens = root.child(names.embedTokens()).tensor("weight", vocab, hidden);
        for (int i = 0; i < config.numLayers(); i++) {
            layers.add(loadLayer(root.child(names.layers()).child(Integer.toString(i)), i));
        }
        this.finalNorm = norm(root, names.finalNorm());
        if (!withHead) {
            this.lmHead = null;
        } else if (config.tieWordEmbeddings() || !root.has(names.lmHead() + ".weight")) {
            this.lmHead = new Linear(embedTokens, null, hidden, vocab);
        } else if (options.unitLmHeadRows()) {
            this.lmHead = Linear.loadUnitRows(root, names.lmHead(), hidden, vocab);
        } else {
            this.lmHead = Linear.load(root, names.lmHead(), hidden, vocab, false);
        }
        this.scratch = new Scratch(backend);
    }

    private DecoderLayer loadLayer(WeightScope layer, int index) {
        WeightNames names = options.names();
        Attention attention = options.attention() != null
                ? options.attention().load(context, layer, index)
                : loadSelfAttention(layer, index);
        FeedForward mlp = options.feedForward() != null
                ? options.feedForward().load(context, layer, index)
                : names.loadMlp(layer, hidden, config.intermediateSize(), options.mlpBias(), options.mlpActivation());
        if (options.has(Feature.SANDWICH_NORMS)) {
            return new DecoderLayer(norm(layer, "input_layernorm"), attention, norm(layer, "post_attention_layernorm"),
                    norm(layer, "pre_feedforward_layernorm"), mlp, norm(layer, "post_feedforward_layernorm"),
                    DecoderLayer.Residual.SEQUENTIAL);
        }
        // Llama's "post_attention_layernorm" is the norm before the MLP.
        return new DecoderLayer(norm(layer, names.attentionNorm()), attention, norm(layer, names.mlpNorm()), mlp,
                DecoderLayer.Residual.SEQUENTIAL);
    }

    private SelfAttention loadSelfAttention(WeightScope layer, int index) {
        WeightNames names = options.names();
        AttentionParams params = options.attentionParams(config, index);
        RotaryEmbedding layerRotary = localRotary != null && params.slidingWindow() > 0 ? localRotary : rotary;
        SelfAttention attention = names.loadAttention(layer, hidden, params, options.qkvBias(), options.outputBias(),
                layerRotary, index);
        if (options.has(Feature.QK_NORM)) {
            attention = attention.withHeadNorms(layer.child(names.attention()), config.rmsNormEps(), options.normWeightOffset());
        }
        return attention;
    }

    private Norm norm(WeightScope scope, String name) {
        if (options.has(Feature.LAYER_NORMS)) {
            return LayerNorm.load(scope, name, hidden, config.doubleOr(1e-5, "layer_norm_eps", "norm_epsilon",
                    "layer_norm_epsilon", "norm_eps"));
        }
        return RmsNorm.load(scope, name, hidden, config.rmsNormEps(), options.normWeightOffset());
    }

    /** The rotary embedding of the (global) layers; null for ALiBi families and those with their own attention. */
    public RotaryEmbedding rotary() {
        return rotary;
    }

    @Override
    public KvCacheSpec kvCacheSpec(int numBlocks, int blockSize) {
        return layers.getFirst().attention().cacheSpec(layers.size(), numBlocks, blockSize);
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
        // Uploaded before the layers, so that a CUDA graph replay has all of its inputs early and may
        // be launched while the rest of the pass is checked (CudaBackend.runCaptured).
        Tensor logitRows = backend.indices(batch.logitRows());
        Tensor x = decode(batch, cache);
        int wanted = batch.logitRows().length;
        Tensor last = scratch.get("last", wanted, hidden);
        backend.gatherRows(x, logitRows, last);
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
        Tensor positions = rotary == null ? backend.indices(batch.positions()) : rotary.tableRows(backend, batch);
        Tensor x = scratch.get("residual", batch.numTokens(), hidden);
        backend.embedding(embedTokens, backend.tokenIds(batch), x);
        if (inputOverride != null) {
            inputOverride.apply(backend, batch, x);
        }
        if (options.embeddingScale() != 1f) {
            backend.scale(x, options.embeddingScale(), x);
        }
        DecoderLayer.forwardAll(layers, backend, x, positions, cache, batch, scratch);
        return x;
    }

    @Override
    public void close() {
    }
}
