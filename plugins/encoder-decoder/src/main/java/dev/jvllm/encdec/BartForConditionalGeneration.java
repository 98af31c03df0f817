package dev.jvllm.encdec;

import dev.jvllm.config.ConfigException;
import dev.jvllm.config.ModelConfig;
import dev.jvllm.engine.ForwardBatch;
import dev.jvllm.models.layers.BertLayer;
import dev.jvllm.models.layers.ConfigValues;
import dev.jvllm.models.layers.DecoderModel;
import dev.jvllm.models.layers.Embeddings;
import dev.jvllm.models.layers.LayerNorm;
import dev.jvllm.models.layers.Linear;
import dev.jvllm.models.layers.Scratch;
import dev.jvllm.models.layers.SelfAttention;
import dev.jvllm.models.layers.WeightScope;
import dev.jvllm.spi.Activation;
import dev.jvllm.spi.AttentionParams;
import dev.jvllm.spi.CausalLM;
import dev.jvllm.spi.KvCache;
import dev.jvllm.spi.ModelArchitecture;
import dev.jvllm.spi.ModelContext;
import dev.jvllm.spi.Tensor;

import java.util.ArrayList;
import java.util.List;

/**
 * BART (Lewis et al. 2019, arXiv:1910.13461; {@code facebook/bart-*}): a Transformer encoder over the
 * prompt and a decoder that attends to it. Both stacks are post-norm, with learned positions whose
 * table starts two rows in, a LayerNorm over the embeddings, and biased projections; the LM head is
 * the shared token embeddings plus {@code final_logits_bias}.
 * <p>
 * The encoder runs in the first step that reaches a request's prompt; each decoder layer's
 * cross-attention keys and values of it are kept ({@link KeptRows}, one plane a layer's keys or values)
 * and read in every later step. The decoder's own keys and values go through the paged KV cache.
 * mBART's pre-norm layout ({@code normalize_before}, {@code add_final_layer_norm}) is refused by name.
 */
public final class BartForConditionalGeneration implements ModelArchitecture {

    @Override
    public List<String> architectureNames() {
        return List.of("BartForConditionalGeneration");
    }

    @Override
    public List<String> modelTypes() {
        return List.of("bart");
    }

    @Override
    public CausalLM load(ModelContext context) {
        return new Model(context);
    }

    /** BART's learned positions: row p + 2 of the table holds position p. */
    private static final int POSITION_OFFSET = 2;
    private static final double LAYER_NORM_EPS = 1e-5;

    /** One decoder layer: self-attention, cross-attention over the encoder's output, the feed-forward block, each followed by its norm. */
    private record DecoderLayer(SelfAttention selfAttention, LayerNorm selfNorm, Linear crossQuery, Linear crossKey,
                                Linear crossValue, Linear crossOutput, LayerNorm crossNorm, Linear fc1, Linear fc2,
                                LayerNorm finalNorm) {
    }

    static final class Model extends EncoderDecoderBase {

        private final int hidden;
        private final Activation activation;
        private final AttentionParams encoderParams;
        private final AttentionParams decoderParams;
        private final Embeddings encoderEmbeddings;
        private final Embeddings decoderEmbeddings;
        private final List<BertLayer> encoderLayers;
        private final List<DecoderLayer> decoderLayers;
        private final Linear lmHead;
        private final Scratch encoderScratch;
        private final Scratch scratch;

        Model(ModelContext context) {
            this(context, context.config(), ConfigValues.positiveInt(context.config(), "d_model", "BART"));
        }

        private Model(ModelContext context, ModelConfig config, int hidden) {
            super(context.backend(), config.intOr(2, "decoder_start_token_id"),
                    ConfigValues.positiveInt(config, "max_position_embeddings", "BART's learned positions"), hidden,
                    ConfigValues.positiveInt(config, "decoder_layers", "BART's decoder"));
            for (String preNorm : new String[]{"normalize_before", "add_final_layer_norm"}) {
                if (config.bool(preNorm, false)) {
                    throw new ConfigException(config.source() + ": " + preNorm + " true (mBART's pre-norm layout) is not "
                            + "supported by BartForConditionalGeneration");
                }
            }
            this.hidden = hidden;
            int vocab = config.vocabSize();
            if (decoderStartTokenId() < 0 || decoderStartTokenId() >= vocab) {
                throw new ConfigException(config.source() + ": decoder_start_token_id " + decoderStartTokenId() + " is outside the "
                        + "vocabulary of " + vocab);
            }
            this.activation = Activation.fromConfig(config.raw().path("activation_function").asText("gelu"));
            this.encoderParams = params(config, "encoder_attention_heads");
            this.decoderParams = params(config, "decoder_attention_heads");
            float tokenScale = config.bool("scale_embedding", false) ? (float) Math.sqrt(hidden) : 1f;

            WeightScope root = WeightScope.root(context.checkpoint(), backend);
            WeightScope model = root.child("model");
            Tensor shared = model.tensor(model.has("shared.weight") ? "shared.weight" : "encoder.embed_tokens.weight", vocab, hidden);
            this.encoderEmbeddings = embeddings(model.child("encoder"), shared, tokenScale);
            this.decoderEmbeddings = embeddings(model.child("decoder"), shared, tokenScale);
            int encoderFfn = ConfigValues.positiveInt(config, "encoder_ffn_dim", "BART's encoder");
            int decoderFfn = ConfigValues.positiveInt(config, "decoder_ffn_dim", "BART's decoder");
            List<BertLayer> encoder = new ArrayList<>();
            for (int i = 0; i < ConfigValues.positiveInt(config, "encoder_layers", "BART's encoder"); i++) {
                encoder.add(encoderLayer(model.child("encoder.layers." + i), encoderFfn));
            }
            List<DecoderLayer> decoder = new ArrayList<>();
            for (int i = 0; i < ConfigValues.positiveInt(config, "decoder_layers", "BART's decoder"); i++) {
                decoder.add(decoderLayer(model.child("decoder.layers." + i), decoderFfn, i));
            }
            this.encoderLayers = List.copyOf(encoder);
            this.decoderLayers = List.copyOf(decoder);
            Linear head = DecoderModel.lmHead(root, "lm_head", shared, config.bool("tie_word_embeddings", true));
            Tensor bias = root.has("final_logits_bias") ? root.tensor("final_logits_bias", 1, vocab) : null;
            this.lmHead = new Linear(head.weight(), bias, hidden, vocab);
            this.encoderScratch = new Scratch(backend);
            this.scratch = new Scratch(backend);
        }

        private AttentionParams params(ModelConfig config, String headsField) {
            int heads = ConfigValues.positiveInt(config, headsField, "BART's attention");
            if (hidden % heads != 0) {
                throw new ConfigException(config.source() + ": d_model " + hidden + " is not a multiple of " + headsField + " " + heads);
            }
            return AttentionParams.causal(heads, heads, hidden / heads);
        }

        private Embeddings embeddings(WeightScope stack, Tensor tokens, float tokenScale) {
            Tensor positions = stack.tensor("embed_positions.weight", maxEncoderTokens() + POSITION_OFFSET, hidden);
            return new Embeddings(tokens, null, positions, POSITION_OFFSET,
                    LayerNorm.load(stack, "layernorm_embedding", hidden, LAYER_NORM_EPS), tokenScale);
        }

        private BertLayer encoderLayer(WeightScope layer, int ffn) {
            WeightScope attention = layer.child("self_attn");
            return new BertLayer(Linear.load(attention, "q_proj", hidden, hidden, true),
                    Linear.load(attention, "k_proj", hidden, hidden, true), Linear.load(attention, "v_proj", hidden, hidden, true),
                    Linear.load(attention, "out_proj", hidden, hidden, true),
                    LayerNorm.load(layer, "self_attn_layer_norm", hidden, LAYER_NORM_EPS),
                    Linear.load(layer, "fc1", hidden, ffn, true), Linear.load(layer, "fc2", ffn, hidden, true),
                    LayerNorm.load(layer, "final_layer_norm", hidden, LAYER_NORM_EPS), encoderParams, activation);
        }

        private DecoderLayer decoderLayer(WeightScope layer, int ffn, int index) {
            WeightScope self = layer.child("self_attn");
            WeightScope cross = layer.child("encoder_attn");
            return new DecoderLayer(
                    new SelfAttention(Linear.load(self, "q_proj", hidden, hidden, true), Linear.load(self, "k_proj", hidden, hidden, true),
                            Linear.load(self, "v_proj", hidden, hidden, true), Linear.load(self, "out_proj", hidden, hidden, true),
                            null, decoderParams, index),
                    LayerNorm.load(layer, "self_attn_layer_norm", hidden, LAYER_NORM_EPS),
                    Linear.load(cross, "q_proj", hidden, hidden, true), Linear.load(cross, "k_proj", hidden, hidden, true),
                    Linear.load(cross, "v_proj", hidden, hidden, true), Linear.load(cross, "out_proj", hidden, hidden, true),
                    LayerNorm.load(layer, "encoder_attn_layer_norm", hidden, LAYER_NORM_EPS),
                    Linear.load(layer, "fc1", hidden, ffn, true), Linear.load(layer, "fc2", ffn, hidden, true),
                    LayerNorm.load(layer, "final_layer_norm", hidden, LAYER_NORM_EPS));
        }

        @Override
        protected Tensor encoderStates(ForwardBatch encoderBatch) {
            Tensor states = encoderScratch.get("encoder.states", encoderBatch.numTokens(), hidden);
            encoderEmbeddings.forward(backend, encoderBatch, encoderScratch, states);
            for (BertLayer layer : encoderLayers) layer.forward(backend, states, encoderBatch, encoderScratch);
            return states;
        }

        @Override
        protected Linear crossKey(int layer) {
            return decoderLayers.get(layer).crossKey();
        }

        @Override
        protected Linear crossValue(int layer) {
            return decoderLayers.get(layer).crossValue();
        }

        @Override
        protected SelfAttention selfAttention(int layer) {
            return decoderLayers.get(layer).selfAttention();
        }

        @Override
        protected Linear lmHead() {
            return lmHead;
        }

        @Override
        public Tensor forward(ForwardBatch batch, KvCache cache) {
            int[] ranges = crossRanges(batch);
            Tensor positions = backend.indices(batch.positions());
            Tensor logitRows = backend.indices(batch.logitRows());
            int tokens = batch.numTokens();
            Tensor x = scratch.get("residual", tokens, hidden);
            decoderEmbeddings.forward(backend, batch, scratch, x);
            Tensor branch = scratch.get("branch", tokens, hidden);
            Tensor queries = scratch.get("cross.q", tokens, hidden);
            Tensor context = scratch.get("cross.context", tokens, hidden);
            Tensor inner = scratch.get("ffn.inner", tokens, decoderLayers.getFirst().fc1().outFeatures());
            for (int l = 0; l < decoderLayers.size(); l++) {
                DecoderLayer layer = decoderLayers.get(l);
                layer.selfAttention().forward(backend, x, positions, cache, batch, scratch, branch);
                backend.add(branch, x, branch);
                layer.selfNorm().apply(backend, branch, x);
                layer.crossQuery().apply(backend, x, queries);
                backend.crossAttention(queries, crossKeys(l), crossValues(l), ranges, batch, decoderParams, context);
                layer.crossOutput().applyPlusResidual(backend, context, x, branch);
                layer.crossNorm().apply(backend, branch, x);
                layer.fc1().applyActivated(backend, activation, x, inner);
                layer.fc2().applyPlusResidual(backend, inner, x, branch);
                layer.finalNorm().apply(backend, branch, x);
            }
            return logits(batch, x, logitRows, null, 1f, scratch);
        }
    }
}
