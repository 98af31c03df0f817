package dev.jvllm.models.layers;

import dev.jvllm.config.ModelConfig;
import dev.jvllm.config.RopeConfig;
import dev.jvllm.spi.Activation;
import dev.jvllm.spi.AttentionParams;

import java.util.EnumSet;
import java.util.List;
import java.util.Set;

/**
 * What tells the Llama-shaped families apart, as data for {@link PreNormDecoder}.
 *
 * @param normWeightOffset  added to every RMSNorm weight: 0, or 1 for Gemma's (1 + w)
 * @param mlpActivation     of the gated MLP: SiLU (SwiGLU) or a GELU (GeGLU)
 * @param qkvBias           biases on the q, k and v projections
 * @param outputBias        bias on the attention output projection
 * @param mlpBias           biases on the MLP projections
 * @param features          structural switches turned on
 * @param embeddingScale    factor on the token embeddings (Gemma: √hidden)
 * @param attentionScale    factor on q·k; 0 for 1/√headDim
 * @param attentionSoftcap  tanh soft-capping of attention scores; 0 for none
 * @param slidingWindows    per layer, the attention window (0 = whole context); null for none anywhere
 * @param finalLogitSoftcap tanh soft-capping of the output logits; 0 for none
 * @param names             where the weights sit in the checkpoint
 * @param positions         how attention learns token positions
 * @param unitLmHeadRows    each LM head row scaled to unit length at load (Baichuan 2's NormHead)
 * @param attention         builds each layer's attention; null for Llama's {@link SelfAttention}
 * @param feedForward       builds each layer's feed-forward block; null for Llama's {@link GatedMlp}
 * @param localRope         the rotary settings of the sliding-window layers where they differ from the
 *                          global ones (Gemma 3's local base); null for the same everywhere
 */
public record DecoderOptions(float normWeightOffset, Activation mlpActivation, boolean qkvBias, boolean outputBias,
                             boolean mlpBias, Set<Feature> features, float embeddingScale, float attentionScale,
                             float attentionSoftcap, int[] slidingWindows, float finalLogitSoftcap, WeightNames names,
                             Positions positions, boolean unitLmHeadRows, LayerPartLoader<Attention> attention,
                             LayerPartLoader<FeedForward> feedForward, RopeConfig localRope) {

    /** How attention learns token positions. */
    public enum Positions {
        /** Rotary on pairs (i, i + d/2), as Llama rotates them. */
        ROTARY,
        /** Rotary on adjacent pairs (2i, 2i + 1), as GPT-J and ChatGLM rotate them. */
        ROTARY_INTERLEAVED,
        /** No rotation; ALiBi biases with the paper's slopes ({@link Alibi#slopes}). */
        ALIBI
    }

    /** Structural switches a family turns on. */
    public enum Feature {
        /** RMSNorm on each query and key head before rotary (Qwen3). */
        QK_NORM,
        /** Norms after attention and MLP as well as before (Gemma 2). */
        SANDWICH_NORMS,
        /** LayerNorm with a bias for every norm instead of RMSNorm (StableLM, StarCoder2 through the generic decoder). */
        LAYER_NORMS
    }

    public boolean has(Feature feature) {
        return features.contains(feature);
    }

    /** Llama's choices as config.json states them: hidden_act, attention_bias (all four projections), mlp_bias. */
    public static Builder builder(ModelConfig config) {
        return new Builder(config);
    }

    /** The attention settings of layer {@code layer}. */
    public AttentionParams attentionParams(ModelConfig config, int layer) {
        int headDim = config.headDim();
        float scale = attentionScale > 0 ? attentionScale : (float) (1.0 / Math.sqrt(headDim));
        int window = slidingWindows == null ? 0 : slidingWindows[layer];
        return new AttentionParams(config.numHeads(), config.numKvHeads(), headDim, scale, window, attentionSoftcap,
                positions == Positions.ALIBI ? Alibi.slopes(config.numHeads()) : null);
    }

    /** Starts from Llama; each method states one difference. */
    public static final class Builder {
        private float normWeightOffset;
        private Activation mlpActivation;
        private boolean qkvBias;
        private boolean outputBias;
        private boolean mlpBias;
        private final Set<Feature> features = EnumSet.noneOf(Feature.class);
        private float embeddingScale = 1f;
        private float attentionScale;
        private float attentionSoftcap;
        private int[] slidingWindows;
        private float finalLogitSoftcap;
        private WeightNames names = WeightNames.LLAMA;
        private Positions positions = Positions.ROTARY;
        private boolean unitLmHeadRows;
        private LayerPartLoader<Attention> attention;
        private LayerPartLoader<FeedForward> feedForward;
        private RopeConfig localRope;

        private Builder(ModelConfig config) {
            mlpActivation = Activation.fromConfig(config.hiddenAct());
            qkvBias = outputBias = config.bool("attention_bias", false);
            mlpBias = config.bool("mlp_bias", false);
        }

        public Builder normWeightOffset(float offset) {
            normWeightOffset = offset;
            return this;
        }

        public Builder mlpActivation(Activation activation) {
            mlpActivation = activation;
            return this;
        }

        public Builder attentionBiases(boolean onQkv, boolean onOutput) {
            qkvBias = onQkv;
            outputBias = onOutput;
            return this;
        }

        public Builder mlpBias(boolean onMlp) {
            mlpBias = onMlp;
            return this;
        }

        public Builder with(Feature... switchedOn) {
            features.addAll(List.of(switchedOn));
            return this;
        }

        public Builder embeddingScale(float scale) {
            embeddingScale = scale;
            return this;
        }

        public Builder attentionScores(float scale, float softcap) {
            attentionScale = scale;
            attentionSoftcap = softcap;
            return this;
        }

        public Builder slidingWindows(int[] windows) {
            slidingWindows = windows.clone();
            return this;
        }

        public Builder finalLogitSoftcap(float cap) {
            finalLogitSoftcap = cap;
            return this;
        }

        public Builder names(WeightNames checkpointNames) {
            names = checkpointNames;
            return this;
        }

        public Builder positions(Positions kind) {
            positions = kind;
            return this;
        }

        public Builder unitLmHeadRows(boolean normalized) {
            unitLmHeadRows = normalized;
            return this;
        }

        /** Each layer's attention from {@code loader} instead of Llama's (DeepSeek's latent attention). */
        public Builder attention(LayerPartLoader<Attention> loader) {
            attention = loader;
            return this;
        }

        /** Each layer's feed-forward block from {@code loader} instead of Llama's MLP (mixtures of experts). */
        public Builder feedForward(LayerPartLoader<FeedForward> loader) {
            feedForward = loader;
            return this;
        }

        /** The sliding-window layers' rotary settings, where they differ from the global layers'. */
        public Builder localRope(RopeConfig rope) {
            localRope = rope;
            return this;
        }

        public DecoderOptions build() {
            return new DecoderOptions(normWeightOffset, mlpActivation, qkvBias, outputBias, mlpBias,
                    Set.copyOf(features), embeddingScale, attentionScale, attentionSoftcap, slidingWindows,
                    finalLogitSoftcap, names, positions, unitLmHeadRows, attention, feedForward, localRope);
        }
    }
}
