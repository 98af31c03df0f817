package dev.jvllm.models.layers;

import dev.jvllm.config.ModelConfig;
import dev.jvllm.engine.ForwardBatch;
import dev.jvllm.models.layers.DecoderOptions.Feature;
import dev.jvllm.spi.Backend;
import dev.jvllm.spi.CausalLM;
import dev.jvllm.spi.KvCache;
import dev.jvllm.spi.KvCacheSpec;
import dev.jvllm.spi.ModelContext;
import dev.jvllm.spi.Tensor;

import java.util.ArrayList;
import java.util.List;

/**
 * The decoder-only transformer of Llama and the families that vary it: token embedding, pre-norm
 * blocks of rotary grouped-query attention and a gated MLP, a final RMSNorm and the LM head (the
 * embedding matrix when tied). Checkpoint names are Llama's ({@code model.layers.N.self_attn.q_proj},
 * ...); what a family changes is stated by its {@link DecoderOptions}.
 */
public final class PreNormDecoder implements CausalLM {

    private final ModelContext context;
    private final Backend backend;
    private final ModelConfig config;
    private final DecoderOptions options;
    private final int hidden;
    private final Tensor embedTokens;
    private final RotaryEmbedding rotary;
    private final List<DecoderLayer> layers = new ArrayList<>();
    private final Norm finalNorm;
    private final Linear lmHead;
    private final Scratch scratch;

    public PreNormDecoder(ModelContext context, DecoderOptions options) {
        this.context = context;
        this.backend = context.backend();
        this.config = context.config();
        this.options = options;
        this.hidden = config.hiddenSize();
        int vocab = config.vocabSize();
        // A family with its own attention brings its own positions (DeepSeek's decoupled rotary key).
        this.rotary = options.attention() != null ? null
                : RotaryEmbedding.create(backend, config.rope(), config.headDim(), context.maxModelLen(), true);
        WeightScope root = WeightScope.root(context.checkpoint(), backend);
        WeightScope model = root.child("model");
        this.embedTokens = model.child("embed_tokens").tensor("weight", vocab, hidden);
        for (int i = 0; i < config.numLayers(); i++) {
            layers.add(loadLayer(model.child("layers").child(Integer.toString(i)), i));
        }
        this.finalNorm = norm(model, "norm");
        this.lmHead = config.tieWordEmbeddings() || !root.has("lm_head.weight")
                ? new Linear(embedTokens, null, hidden, vocab)
                : Linear.load(root, "lm_head", hidden, vocab, false);
        this.scratch = new Scratch(backend);
    }

    private DecoderLayer loadLayer(WeightScope layer, int index) {
        Attention attention = options.attention() != null
                ? options.attention().load(context, layer, index)
                : loadSelfAttention(layer.child("self_attn"), index);
        FeedForward mlp = options.feedForward() != null
                ? options.feedForward().load(context, layer, index)
                : loadMlp(layer.child("mlp"));
        if (options.has(Feature.SANDWICH_NORMS)) {
            return new DecoderLayer(norm(layer, "input_layernorm"), attention, norm(layer, "post_attention_layernorm"),
                    norm(layer, "pre_feedforward_layernorm"), mlp, norm(layer, "post_feedforward_layernorm"),
                    DecoderLayer.Residual.SEQUENTIAL);
        }
        // Llama's "post_attention_layernorm" is the norm before the MLP.
        return new DecoderLayer(norm(layer, "input_layernorm"), attention,
                norm(layer, "post_attention_layernorm"), mlp, DecoderLayer.Residual.SEQUENTIAL);
    }

    private SelfAttention loadSelfAttention(WeightScope attentionScope, int index) {
        var params = options.attentionParams(config, index);
        SelfAttention attention = options.has(Feature.FUSED_PROJECTIONS)
                ? SelfAttention.loadFused(attentionScope, "qkv_proj", hidden, params, rotary, index)
                : SelfAttention.load(attentionScope, hidden, params, options.qkvBias(), options.outputBias(), rotary, index);
        if (options.has(Feature.QK_NORM)) {
            attention = attention.withHeadNorms(attentionScope, config.rmsNormEps());
        }
        return attention;
    }

    private GatedMlp loadMlp(WeightScope mlpScope) {
        return options.has(Feature.FUSED_PROJECTIONS)
                ? GatedMlp.loadFused(mlpScope, "gate_up_proj", hidden, config.intermediateSize(), options.mlpActivation())
                : GatedMlp.load(mlpScope, hidden, config.intermediateSize(), options.mlpBias(), options.mlpActivation());
    }

    private Norm norm(WeightScope scope, String name) {
        return RmsNorm.load(scope, name, hidden, config.rmsNormEps(), options.normWeightOffset());
    }

    @Override
    public KvCacheSpec kvCacheSpec(int numBlocks, int blockSize) {
        return layers.getFirst().attention().cacheSpec(layers.size(), numBlocks, blockSize);
    }

    @Override
    public int vocabSize() {
        return lmHead.outFeatures();
    }

    @Override
    public Tensor forward(ForwardBatch batch, KvCache cache) {
        Tensor positions = rotary != null ? rotary.tableRows(backend, batch) : backend.indices(batch.positions());
        Tensor x = scratch.get("residual", batch.numTokens(), hidden);
        backend.embedding(embedTokens, backend.indices(batch.tokenIds()), x);
        if (options.embeddingScale() != 1f) {
            backend.scale(x, options.embeddingScale(), x);
        }
        for (DecoderLayer layer : layers) {
            layer.forward(backend, x, positions, cache, batch, scratch);
        }
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
}
