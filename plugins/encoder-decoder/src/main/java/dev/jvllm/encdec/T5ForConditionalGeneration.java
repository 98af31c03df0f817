package dev.jvllm.encdec;

import dev.jvllm.config.ConfigException;
import dev.jvllm.config.ModelConfig;
import dev.jvllm.engine.ForwardBatch;
import dev.jvllm.models.layers.ConfigValues;
import dev.jvllm.models.layers.FeedForward;
import dev.jvllm.models.layers.GatedMlp;
import dev.jvllm.models.layers.Linear;
import dev.jvllm.models.layers.Mlp;
import dev.jvllm.models.layers.RmsNorm;
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
import java.util.Locale;

/**
 * T5 (Raffel et al. 2019, arXiv:1910.10683; {@code google-t5/t5-*}, {@code google/flan-t5-*}, T5 v1.1):
 * pre-norm encoder and decoder stacks with RMSNorm and no biases, attention without the 1/√d scale,
 * and positions only as a learned bias per head and bucket of relative distance (logarithmic
 * buckets past half of them, saturating at {@code relative_attention_max_distance}); the encoder's
 * buckets look both ways, the decoder's back only. The first layer of each stack holds the bias
 * table, which every layer of that stack uses. The feed-forward block is ReLU or gated GELU/SiLU
 * ({@code feed_forward_proj}). Before the LM head the decoder's output is scaled by
 * {@code d_model^-½} where {@code scale_decoder_outputs} says so (older configs: a tied head).
 */
public final class T5ForConditionalGeneration implements ModelArchitecture {

    @Override
    public List<String> architectureNames() {
        return List.of("T5ForConditionalGeneration");
    }

    @Override
    public List<String> modelTypes() {
        return List.of("t5");
    }

    @Override
    public CausalLM load(ModelContext context) {
        return new Model(context);
    }

    /** The encoder prompt's length where the config names none: T5's pre-training length. */
    private static final int DEFAULT_MAX_ENCODER_TOKENS = 512;

    /** T5's relative position bucket of key position − query position (Transformers' _relative_position_bucket, in its float32 steps). */
    static int bucket(int relative, boolean bidirectional, int numBuckets, int maxDistance) {
        int bucket = 0;
        int n;
        if (bidirectional) {
            numBuckets /= 2;
            if (relative > 0) bucket += numBuckets;
            n = Math.abs(relative);
        } else {
            n = Math.max(-relative, 0);
        }
        int maxExact = numBuckets / 2;
        if (n < maxExact) return bucket + n;
        float large = (float) Math.log((float) n / maxExact);
        large = large / (float) Math.log((double) maxDistance / maxExact);
        large = large * (numBuckets - maxExact);
        return bucket + Math.min(maxExact + (int) large, numBuckets - 1);
    }

    /** The bias table [buckets, heads] resolved to values per head and distance up to maxDistance. */
    static AttentionParams.RelativeBias resolve(float[] table, int heads, boolean bidirectional, int numBuckets, int maxDistance) {
        int width = 2 * maxDistance + 1;
        float[] values = new float[heads * width];
        for (int relative = -maxDistance; relative <= maxDistance; relative++) {
            int b = bucket(relative, bidirectional, numBuckets, maxDistance);
            for (int h = 0; h < heads; h++) values[h * width + relative + maxDistance] = table[b * heads + h];
        }
        return new AttentionParams.RelativeBias(values, maxDistance);
    }

    /** An attention block's four projections (no biases). */
    private record Projections(Linear q, Linear k, Linear v, Linear o) {
        static Projections load(WeightScope scope, int hidden, int inner) {
            return new Projections(Linear.load(scope, "q", hidden, inner, false), Linear.load(scope, "k", hidden, inner, false),
                    Linear.load(scope, "v", hidden, inner, false), Linear.load(scope, "o", inner, hidden, false));
        }
    }

    private record EncoderLayer(RmsNorm attentionNorm, Projections attention, RmsNorm feedForwardNorm, FeedForward feedForward) {
    }

    private record DecoderLayer(RmsNorm selfNorm, SelfAttention selfAttention, RmsNorm crossNorm, Projections cross,
                                RmsNorm feedForwardNorm, FeedForward feedForward) {
    }

    static final class Model extends EncoderDecoderBase {

        private final int hidden;
        private final int inner;
        private final AttentionParams encoderParams;
        private final AttentionParams crossParams;
        private final Tensor shared;
        private final List<EncoderLayer> encoderLayers = new ArrayList<>();
        private final List<DecoderLayer> decoderLayers = new ArrayList<>();
        private final RmsNorm encoderFinalNorm;
        private final RmsNorm decoderFinalNorm;
        private final Linear lmHead;
        private final float outputScale;
        private final Scratch encoderScratch;
        private final Scratch scratch;

        Model(ModelContext context) {
            this(context, context.config());
        }

        private Model(ModelContext context, ModelConfig config) {
            super(context.backend(), config.intOr(config.intOr(0, "pad_token_id"), "decoder_start_token_id"),
                    config.intOr(DEFAULT_MAX_ENCODER_TOKENS, "n_positions", "max_position_embeddings"),
                    ConfigValues.positiveInt(config, "num_heads", "T5") * ConfigValues.positiveInt(config, "d_kv", "T5"),
                    decoderLayers(config));
            this.hidden = ConfigValues.positiveInt(config, "d_model", "T5");
            int heads = ConfigValues.positiveInt(config, "num_heads", "T5");
            int headDim = ConfigValues.positiveInt(config, "d_kv", "T5");
            this.inner = heads * headDim;
            int vocab = config.vocabSize();
            if (decoderStartTokenId() < 0 || decoderStartTokenId() >= vocab) {
                throw new ConfigException(config.source() + ": decoder_start_token_id " + decoderStartTokenId()
                        + " is outside the vocabulary of " + vocab);
            }
            int ffn = ConfigValues.positiveInt(config, "d_ff", "T5's feed-forward blocks");
            int buckets = config.intOr(32, "relative_attention_num_buckets");
            int maxDistance = config.intOr(128, "relative_attention_max_distance");
            if (buckets < 4 || maxDistance < buckets / 2 || maxDistance > 1 << 16) {
                throw new ConfigException(config.source() + ": relative_attention_num_buckets " + buckets
                        + " and relative_attention_max_distance " + maxDistance + " must satisfy 4 <= buckets <= 2 · distance <= 131072");
            }
            double eps = config.doubleOr(1e-6, "layer_norm_epsilon");
            String[] feedForward = feedForward(config);
            boolean gated = feedForward[0].equals("gated");
            Activation activation = Activation.fromConfig(feedForward[1]);
            // T5 scores are q·k unscaled: its initialization folds the scale into the query weights.
            AttentionParams plain = new AttentionParams(heads, heads, headDim, 1f, 0, 0f, null);
            this.crossParams = plain;

            WeightScope root = WeightScope.root(context.checkpoint(), backend);
            this.shared = root.tensor(root.has("shared.weight") ? "shared.weight" : "encoder.embed_tokens.weight", vocab, hidden);
            int encoderLayerCount = ConfigValues.positiveInt(config, "num_layers", "T5");
            int decoderLayerCount = decoderLayers(config);
            WeightScope firstEncoder = root.child("encoder.block.0.layer.0.SelfAttention");
            WeightScope firstDecoder = root.child("decoder.block.0.layer.0.SelfAttention");
            this.encoderParams = plain.withRelativeBias(resolve(firstEncoder.floats("relative_attention_bias.weight", buckets, heads),
                    heads, true, buckets, maxDistance));
            AttentionParams decoderParams = plain.withRelativeBias(resolve(
                    firstDecoder.floats("relative_attention_bias.weight", buckets, heads), heads, false, buckets, maxDistance));
            for (int i = 0; i < encoderLayerCount; i++) {
                WeightScope block = root.child("encoder.block." + i + ".layer");
                encoderLayers.add(new EncoderLayer(RmsNorm.load(block.child("0"), "layer_norm", hidden, eps),
                        Projections.load(block.child("0.SelfAttention"), hidden, inner),
                        RmsNorm.load(block.child("1"), "layer_norm", hidden, eps),
                        feedForward(block.child("1.DenseReluDense"), gated, activation, ffn)));
            }
            for (int i = 0; i < decoderLayerCount; i++) {
                WeightScope block = root.child("decoder.block." + i + ".layer");
                Projections self = Projections.load(block.child("0.SelfAttention"), hidden, inner);
                decoderLayers.add(new DecoderLayer(RmsNorm.load(block.child("0"), "layer_norm", hidden, eps),
                        new SelfAttention(self.q(), self.k(), self.v(), self.o(), null, decoderParams, i),
                        RmsNorm.load(block.child("1"), "layer_norm", hidden, eps),
                        Projections.load(block.child("1.EncDecAttention"), hidden, inner),
                        RmsNorm.load(block.child("2"), "layer_norm", hidden, eps),
                        feedForward(block.child("2.DenseReluDense"), gated, activation, ffn)));
            }
            this.encoderFinalNorm = RmsNorm.load(root.child("encoder"), "final_layer_norm", hidden, eps);
            this.decoderFinalNorm = RmsNorm.load(root.child("decoder"), "final_layer_norm", hidden, eps);
            this.lmHead = root.has("lm_head.weight") ? Linear.load(root, "lm_head", hidden, vocab, false)
                    : new Linear(shared, null, hidden, vocab);
            boolean scale = config.raw().has("scale_decoder_outputs") ? config.bool("scale_decoder_outputs", false)
                    : config.bool("tie_word_embeddings", true);
            this.outputScale = scale ? (float) Math.pow(hidden, -0.5) : 1f;
            this.encoderScratch = new Scratch(backend);
            this.scratch = new Scratch(backend);
        }

        /** num_decoder_layers, else num_layers; positive. */
        private static int decoderLayers(ModelConfig config) {
            return config.raw().hasNonNull("num_decoder_layers") ? ConfigValues.positiveInt(config, "num_decoder_layers", "T5's decoder")
                    : ConfigValues.positiveInt(config, "num_layers", "T5");
        }

        /** {gated or plain, activation name} from dense_act_fn and feed_forward_proj ("relu", "gated-gelu", ...). */
        private static String[] feedForward(ModelConfig config) {
            String projection = config.raw().path("feed_forward_proj").asText("relu").toLowerCase(Locale.ROOT);
            String[] parts = projection.split("-");
            boolean gated = parts.length == 2 && parts[0].equals("gated");
            if (parts.length > 2 || parts.length == 2 && !gated) {
                throw new ConfigException(config.source() + ": feed_forward_proj '" + projection + "' is neither an activation "
                        + "nor 'gated-' and one");
            }
            String activation = gated ? parts[1] : parts[0];
            // Transformers reads "gated-gelu" as the tanh approximation (gelu_new), as dense_act_fn states where saved.
            if (gated && activation.equals("gelu")) activation = "gelu_new";
            activation = config.raw().path("dense_act_fn").asText(activation);
            return new String[]{gated ? "gated" : "plain", activation};
        }

        private FeedForward feedForward(WeightScope scope, boolean gated, Activation activation, int ffn) {
            Linear out = Linear.load(scope, "wo", ffn, hidden, false);
            if (gated) {
                return new GatedMlp(Linear.load(scope, "wi_0", hidden, ffn, false), Linear.load(scope, "wi_1", hidden, ffn, false),
                        out, activation);
            }
            return new Mlp(Linear.load(scope, "wi", hidden, ffn, false), activation, out);
        }

        @Override
        protected Tensor encoderStates(ForwardBatch encoderBatch) {
            int tokens = encoderBatch.numTokens();
            Tensor x = encoderScratch.get("encoder.residual", tokens, hidden);
            Tensor normed = encoderScratch.get("encoder.normed", tokens, hidden);
            Tensor q = encoderScratch.get("encoder.q", tokens, inner), k = encoderScratch.get("encoder.k", tokens, inner);
            Tensor v = encoderScratch.get("encoder.v", tokens, inner), context = encoderScratch.get("encoder.context", tokens, inner);
            Tensor branch = encoderScratch.get("encoder.branch", tokens, hidden);
            backend.embedding(shared, backend.tokenIds(encoderBatch), x);
            for (EncoderLayer layer : encoderLayers) {
                layer.attentionNorm().apply(backend, x, normed);
                Projections p = layer.attention();
                Linear.applyAll(backend, normed, new Linear[]{p.q(), p.k(), p.v()}, new Tensor[]{q, k, v});
                backend.encoderAttention(q, k, v, encoderBatch, encoderParams, context);
                p.o().apply(backend, context, branch);
                backend.add(x, branch, x);
                layer.feedForwardNorm().apply(backend, x, normed);
                layer.feedForward().forward(backend, normed, encoderScratch, branch);
                backend.add(x, branch, x);
            }
            Tensor states = encoderScratch.get("encoder.states", tokens, hidden);
            encoderFinalNorm.apply(backend, x, states);
            return states;
        }

        @Override
        protected Linear crossKey(int layer) {
            return decoderLayers.get(layer).cross().k();
        }

        @Override
        protected Linear crossValue(int layer) {
            return decoderLayers.get(layer).cross().v();
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
            Tensor normed = scratch.get("normed", tokens, hidden);
            Tensor branch = scratch.get("branch", tokens, hidden);
            Tensor queries = scratch.get("cross.q", tokens, inner), context = scratch.get("cross.context", tokens, inner);
            backend.embedding(shared, backend.tokenIds(batch), x);
            for (int l = 0; l < decoderLayers.size(); l++) {
                DecoderLayer layer = decoderLayers.get(l);
                layer.selfNorm().apply(backend, x, normed);
                layer.selfAttention().forward(backend, normed, positions, cache, batch, scratch, branch);
                layer.crossNorm().addThenApply(backend, x, branch, normed);
                layer.cross().q().apply(backend, normed, queries);
                backend.crossAttention(queries, crossKeys(l), crossValues(l), ranges, maxEncoderTokens(), batch, crossParams, context);
                layer.cross().o().apply(backend, context, branch);
                layer.feedForwardNorm().addThenApply(backend, x, branch, normed);
                layer.feedForward().forward(backend, normed, scratch, branch);
                backend.add(x, branch, x);
            }
            return logits(batch, x, logitRows, decoderFinalNorm, outputScale, scratch);
        }
    }
}
