package dev.jvllm.models;

import dev.jvllm.config.ConfigException;
import dev.jvllm.config.ModelConfig;
import dev.jvllm.engine.ForwardBatch;
import dev.jvllm.models.layers.GatedMlp;
import dev.jvllm.models.layers.Linear;
import dev.jvllm.models.layers.RmsNorm;
import dev.jvllm.models.layers.RotaryEmbedding;
import dev.jvllm.models.layers.Scratch;
import dev.jvllm.models.layers.SelfAttention;
import dev.jvllm.models.layers.WeightScope;
import dev.jvllm.spi.AttentionParams;
import dev.jvllm.spi.Backend;
import dev.jvllm.spi.CausalLM;
import dev.jvllm.spi.KvCache;
import dev.jvllm.spi.KvCacheSpec;
import dev.jvllm.spi.ModelArchitecture;
import dev.jvllm.spi.ModelContext;
import dev.jvllm.spi.PoolingModel;
import dev.jvllm.spi.Tensor;

import java.util.ArrayList;
import java.util.List;

/**
 * Llama 1/2/3/3.1 (and checkpoints that reuse its class: Yi, DeepSeek-LLM): pre-norm decoder
 * layers of rotary grouped-query attention and a SwiGLU MLP, RMSNorm everywhere.
 */
public final class LlamaForCausalLM implements CausalLM {

    /** The registry entry. */
    public static final class Architecture implements ModelArchitecture {
        @Override
        public List<String> architectureNames() {
            return List.of("LlamaForCausalLM", "LLaMAForCausalLM");
        }

        @Override
        public CausalLM load(ModelContext context) {
            return new LlamaForCausalLM(context);
        }

        /** As vLLM's pooling runner on a causal LM: the decoder without its head, last-token pooled. */
        @Override
        public PoolingModel loadPooling(ModelContext context) {
            return new LlamaModel(new LlamaForCausalLM(context, "model", false, false), context.maxModelLen());
        }
    }

    private record Layer(RmsNorm inputNorm, SelfAttention attention, RmsNorm postAttentionNorm, GatedMlp mlp) {
    }

    private final Backend backend;
    private final ModelConfig config;
    private final int hidden;
    private final int vocab;
    private final Tensor embedTokens;
    private final List<Layer> layers = new ArrayList<>();
    private final RmsNorm finalNorm;
    private final Linear lmHead;
    private final Scratch scratch;

    public LlamaForCausalLM(ModelContext context) {
        this(context, "model", true, false);
    }

    /**
     * @param prefix  where the decoder's weights live: "model", or "" in checkpoints saved without their head
     * @param withHead whether to load the language-model head ({@link #forward} needs it)
     * @param qkvBias  whether q/k/v projections have biases when config.json does not say (Qwen2)
     */
    LlamaForCausalLM(ModelContext context, String prefix, boolean withHead, boolean qkvBias) {
        this.backend = context.backend();
        this.config = context.config();
        if (!config.hiddenAct().equals("silu")) {
            throw new ConfigException(config.source() + ": hidden_act '" + config.hiddenAct() + "' is not supported by Llama (expected silu)");
        }
        this.hidden = config.hiddenSize();
        this.vocab = config.vocabSize();
        double eps = config.rmsNormEps();
        boolean attentionBias = config.bool("attention_bias", qkvBias);
        boolean mlpBias = config.bool("mlp_bias", false);
        AttentionParams attention = AttentionParams.causal(config.numHeads(), config.numKvHeads(), config.headDim());
        RotaryEmbedding rotary = RotaryEmbedding.create(backend, config.rope(), config.headDim(), context.maxModelLen(), true);

        WeightScope root = WeightScope.root(context.checkpoint(), backend);
        WeightScope model = prefix.isEmpty() ? root : root.child(prefix);
        this.embedTokens = model.child("embed_tokens").tensor("weight", vocab, hidden);
        for (int i = 0; i < config.numLayers(); i++) {
            WeightScope layer = model.child("layers").child(Integer.toString(i));
            layers.add(new Layer(
                    RmsNorm.load(layer, "input_layernorm", hidden, eps),
                    SelfAttention.load(layer.child("self_attn"), hidden, attention, attentionBias, rotary, i),
                    RmsNorm.load(layer, "post_attention_layernorm", hidden, eps),
                    GatedMlp.load(layer.child("mlp"), hidden, config.intermediateSize(), mlpBias)));
        }
        this.finalNorm = RmsNorm.load(model, "norm", hidden, eps);
        this.lmHead = !withHead ? null : config.tieWordEmbeddings() || !root.has("lm_head.weight")
                ? new Linear(embedTokens, null, hidden, vocab)
                : Linear.load(root, "lm_head", hidden, vocab, false);
        this.scratch = new Scratch(backend);
    }

    @Override
    public KvCacheSpec kvCacheSpec(int numBlocks, int blockSize) {
        return new KvCacheSpec(layers.size(), numBlocks, blockSize, config.numKvHeads(), config.headDim());
    }

    @Override
    public int vocabSize() {
        return vocab;
    }

    int hiddenSize() {
        return hidden;
    }

    /** The final-normed hidden state of every token of the batch, [tokens, hidden]. */
    Tensor hiddenStates(ForwardBatch batch, KvCache cache) {
        Tensor x = decode(batch, cache);
        Tensor normed = scratch.get("normed", batch.numTokens(), hidden);
        finalNorm.apply(backend, x, normed);
        return normed;
    }

    @Override
    public Tensor forward(ForwardBatch batch, KvCache cache) {
        Tensor x = decode(batch, cache);
        int wanted = batch.logitRows().length;
        Tensor last = scratch.get("last", wanted, hidden);
        backend.gatherRows(x, backend.indices(batch.logitRows()), last);
        Tensor lastNormed = scratch.get("last.normed", wanted, hidden);
        finalNorm.apply(backend, last, lastNormed);
        Tensor logits = scratch.get("logits", wanted, vocabSize());
        lmHead.apply(backend, lastNormed, logits);
        return logits;
    }

    /** The residual stream after the last layer (before the final norm). */
    private Tensor decode(ForwardBatch batch, KvCache cache) {
        int tokens = batch.numTokens();
        Tensor positions = backend.indices(batch.positions());
        Tensor x = scratch.get("residual", tokens, hidden);
        Tensor h = scratch.get("normed", tokens, hidden);
        Tensor branch = scratch.get("branch", tokens, hidden);
        backend.embedding(embedTokens, backend.indices(batch.tokenIds()), x);
        for (Layer layer : layers) {
            layer.inputNorm().apply(backend, x, h);
            layer.attention().forward(backend, h, positions, cache, batch, scratch, branch);
            backend.add(x, branch, x);
            layer.postAttentionNorm().apply(backend, x, h);
            layer.mlp().forward(backend, h, scratch, branch);
            backend.add(x, branch, x);
        }
        return x;
    }
}
