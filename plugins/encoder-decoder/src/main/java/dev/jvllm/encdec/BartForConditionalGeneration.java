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
 * the shared token embeddings plus {@code final_logits_bias}. Two relatives load here too:
 * <ul>
 *   <li>mBART ({@code facebook/mbart-large-50*}): pre-norm layers and a LayerNorm after each stack;</li>
 *   <li>Marian ({@code Helsinki-NLP/opus-mt-*}): post-norm, no embedding norm, and sinusoidal positions
 *       (sines in the first half of each row, cosines in the second) that its checkpoints leave out.</li>
 * </ul>
 * <p>
 * The encoder runs in the first step that reaches a request's prompt; each decoder layer's
 * cross-attention keys and values of it are kept ({@link KeptRows}, one plane a layer's keys or values)
 * and read in every later step. The decoder's own keys and values go through the paged KV cache.
 * A {@code bart} config asking for the pre-norm layout ({@code normalize_before}, {@code add_final_layer_norm},
 * which Transformers' BART ignores) is refused by name.
 */
public final class BartForConditionalGeneration implements ModelArchitecture {

    @Override
    public List<String> architectureNames() {
        return List.of("BartForConditionalGeneration", "MBartForConditionalGeneration", "MarianMTModel");
    }

    @Override
    public List<String> modelTypes() {
        return List.of("bart", "mbart", "marian");
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
        /** mBART: each block's norm comes before it, and a norm ends each stack (else null). */
        private final boolean preNorm;
        private final LayerNorm encoderFinalNorm;
        private final LayerNorm decoderFinalNorm;
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
            String family = config.modelType().isEmpty() ? "bart" : config.modelType();
            if (family.equals("bart")) {
                for (String field : new String[]{"normalize_before", "add_final_layer_norm"}) {
                    if (config.bool(field, false)) {
                        throw new ConfigException(config.source() + ": " + field + " true is not supported by BART "
                                + "(Transformers' BART ignores it; mBART's configs have model_type \"mbart\")");
                    }
                }
            }
            if (family.equals("marian") && !config.bool("share_encoder_decoder_embeddings", true)) {
                throw new ConfigException(config.source() + ": share_encoder_decoder_embeddings false (separate decoder "
                        + "embeddings) is not supported");
            }
            this.preNorm = family.equals("mbart");
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
            Tensor sinusoids = family.equals("marian") ? sinusoids(maxEncoderTokens(), hidden) : null;
            this.encoderEmbeddings = embeddings(model.child("encoder"), shared, tokenScale, sinusoids);
            this.decoderEmbeddings = embeddings(model.child("decoder"), shared, tokenScale, sinusoids);
            this.encoderFinalNorm = preNorm ? LayerNorm.load(model.child("encoder"), "layer_norm", hidden, LAYER_NORM_EPS) : null;
            this.decoderFinalNorm = preNorm ? LayerNorm.load(model.child("decoder"), "layer_norm", hidden, LAYER_NORM_EPS) : null;
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

        /** Learned positions two rows in and the embedding norm (BART, mBART), or the sinusoids and none (Marian). */
        private Embeddings embeddings(WeightScope stack, Tensor tokens, float tokenScale, Tensor sinusoids) {
            if (sinusoids != null) return new Embeddings(tokens, null, sinusoids, 0, null, tokenScale);
            Tensor positions = stack.tensor("embed_positions.weight", maxEncoderTokens() + POSITION_OFFSET, hidden);
            return new Embeddings(tokens, null, positions, POSITION_OFFSET,
                    LayerNorm.load(stack, "layernorm_embedding", hidden, LAYER_NORM_EPS), tokenScale);
        }

        /** Marian's position table: row p holds sin(p / 10000^(2i/d)) at i and the cosine at d/2 + i, for i < d/2. */
        private Tensor sinusoids(int positions, int width) {
            float[] table = new float[positions * width];
            int half = width / 2;
            for (int p = 0; p < positions; p++) {
                for (int i = 0; i < half; i++) {
                    double angle = p / Math.pow(10000, 2.0 * i / width);
                    table[p * width + i] = (float) Math.sin(angle);
                    table[p * width + half + i] = (float) Math.cos(angle);
                }
            }
            return backend.constant(table, positions, width);
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
            int tokens = encoderBatch.numTokens();
            Tensor states = encoderScratch.get("encoder.states", tokens, hidden);
            encoderEmbeddings.forward(backend, encoderBatch, encoderScratch, states);
            if (!preNorm) {
                for (BertLayer layer : encoderLayers) layer.forward(backend, states, encoderBatch, encoderScratch);
                return states;
            }
            Tensor normed = encoderScratch.get("encoder.normed", tokens, hidden), branch = encoderScratch.get("encoder.branch", tokens, hidden);
            Tensor q = encoderScratch.get("encoder.q", tokens, hidden), k = encoderScratch.get("encoder.k", tokens, hidden);
            Tensor v = encoderScratch.get("encoder.v", tokens, hidden), context = encoderScratch.get("encoder.context", tokens, hidden);
            for (BertLayer layer : encoderLayers) {
                layer.attentionNorm().apply(backend, states, normed);
                Linear.applyAll(backend, normed, new Linear[]{layer.query(), layer.key(), layer.value()}, new Tensor[]{q, k, v});
                backend.encoderAttention(q, k, v, encoderBatch, encoderParams, context);
                layer.attentionOutput().apply(backend, context, branch);
                backend.add(states, branch, states);
                layer.outputNorm().apply(backend, states, normed);
                Tensor inner = encoderScratch.get("encoder.inner", tokens, layer.intermediate().outFeatures());
                layer.intermediate().applyActivated(backend, activation, normed, inner);
                layer.output().apply(backend, inner, branch);
                backend.add(states, branch, states);
            }
            Tensor out = encoderScratch.get("encoder.final", tokens, hidden);
            encoderFinalNorm.apply(backend, states, out);
            return out;
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
                if (preNorm) {
                    Tensor normed = scratch.get("normed", tokens, hidden);
                    layer.selfNorm().apply(backend, x, normed);
                    layer.selfAttention().forward(backend, normed, positions, cache, batch, scratch, branch);
                    layer.crossNorm().addThenApply(backend, x, branch, normed);
                    layer.crossQuery().apply(backend, normed, queries);
                    backend.crossAttention(queries, crossKeys(l), crossValues(l), ranges, maxEncoderTokens(), batch, decoderParams,
                            context);
                    layer.crossOutput().apply(backend, context, branch);
                    layer.finalNorm().addThenApply(backend, x, branch, normed);
                    layer.fc1().applyActivated(backend, activation, normed, inner);
                    layer.fc2().apply(backend, inner, branch);
                    backend.add(x, branch, x);
                    continue;
                }
                // Post-norm: each sublayer's output joins the stream and the norm replaces it, x = norm(branch + x).
                layer.selfAttention().forward(backend, x, positions, cache, batch, scratch, branch);
                layer.selfNorm().addThenApply(backend, branch, x, x);
                layer.crossQuery().apply(backend, x, queries);
                backend.crossAttention(queries, crossKeys(l), crossValues(l), ranges, maxEncoderTokens(), batch, decoderParams, context);
                layer.crossOutput().apply(backend, context, branch);
                layer.crossNorm().addThenApply(backend, branch, x, x);
                layer.fc1().applyActivated(backend, activation, x, inner);
                layer.fc2().apply(backend, inner, branch);
                layer.finalNorm().addThenApply(backend, branch, x, x);
            }
            return logits(batch, x, logitRows, decoderFinalNorm, 1f, scratch);
        }
    }
}
