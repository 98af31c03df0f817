package dev.jvllm.models.layers;

import dev.jvllm.spi.Activation;
import dev.jvllm.spi.AttentionParams;

import java.util.List;

/**
 * Where a {@link PreNormDecoder}'s weights sit in a checkpoint, as data (vLLM's weight-name
 * mapping): Llama's names, or a family's own. Names inside a layer are relative to
 * {@code <layers>.N.<attention or mlp>}. A projection named once is a fused matrix split by rows.
 *
 * @param qkv    the q, k and v projections: three names, or one fused matrix laid out as {@code qkvLayout}
 * @param gateUp the gate and up projections: two names, or one fused [gate; up] matrix
 */
public record WeightNames(String embedTokens, String layers, String finalNorm, String lmHead,
                          String attentionNorm, String mlpNorm,
                          String attention, String output, QkvLayout qkvLayout, List<String> qkv,
                          String mlp, String down, List<String> gateUp) {

    /** The row order of a fused q/k/v matrix. */
    public enum QkvLayout {
        /** [q; k; v] (Phi-3's qkv_proj, Baichuan's W_pack, ChatGLM's query_key_value). */
        BLOCKS,
        /** [kvHeads, queriesPerKv + 2, headDim]: each key/value head's queries, key and value (InternLM2's wqkv). */
        PER_KV_HEAD
    }

    public static final WeightNames LLAMA = new WeightNames("model.embed_tokens", "model.layers", "model.norm", "lm_head",
            "input_layernorm", "post_attention_layernorm",
            "self_attn", "o_proj", QkvLayout.BLOCKS, List.of("q_proj", "k_proj", "v_proj"),
            "mlp", "down_proj", List.of("gate_proj", "up_proj"));

    public WeightNames {
        if (qkv.size() != 1 && qkv.size() != 3) {
            throw new IllegalArgumentException("q, k and v take three names or one fused name, got " + qkv);
        }
        if (gateUp.size() != 1 && gateUp.size() != 2) {
            throw new IllegalArgumentException("gate and up take two names or one fused name, got " + gateUp);
        }
        qkv = List.copyOf(qkv);
        gateUp = List.copyOf(gateUp);
    }

    /** These names with the model-level ones replaced. */
    /**
     * The names as saved by Transformers' headless classes ({@code LlamaModel}, {@code MistralModel}):
     * the same, without the leading {@code model.}.
     */
    public WeightNames withoutModelPrefix() {
        return model(strip(embedTokens), strip(layers), strip(finalNorm), lmHead);
    }

    /**
     * The names with the decoder under {@code decoder} instead of {@code model} and the LM head at
     * {@code lmHead}: a vision-language checkpoint's language model ({@code language_model.model}).
     */
    public WeightNames under(String decoder, String lmHead) {
        return model(decoder + "." + strip(embedTokens), decoder + "." + strip(layers), decoder + "." + strip(finalNorm), lmHead);
    }

    private static String strip(String name) {
        return name.startsWith("model.") ? name.substring("model.".length()) : name;
    }

    public WeightNames model(String embedTokens, String layers, String finalNorm, String lmHead) {
        return new WeightNames(embedTokens, layers, finalNorm, lmHead, attentionNorm, mlpNorm, attention, output,
                qkvLayout, qkv, mlp, down, gateUp);
    }

    /** These names with the norms before attention and before the MLP replaced. */
    public WeightNames norms(String attentionNorm, String mlpNorm) {
        return new WeightNames(embedTokens, layers, finalNorm, lmHead, attentionNorm, mlpNorm, attention, output,
                qkvLayout, qkv, mlp, down, gateUp);
    }

    /** These names with the attention's replaced: its scope, output projection and q/k/v projection(s). */
    public WeightNames attention(String scope, String output, QkvLayout layout, String... qkv) {
        return new WeightNames(embedTokens, layers, finalNorm, lmHead, attentionNorm, mlpNorm, scope, output,
                layout, List.of(qkv), mlp, down, gateUp);
    }

    /** These names with the MLP's replaced: its scope, down projection and gate/up projection(s). */
    public WeightNames mlp(String scope, String down, String... gateUp) {
        return new WeightNames(embedTokens, layers, finalNorm, lmHead, attentionNorm, mlpNorm, attention, output,
                qkvLayout, qkv, scope, down, List.of(gateUp));
    }

    /** The attention of the layer under {@code layer}; biases on q, k, v ({@code qkvBias}) and on the output. */
    public SelfAttention loadAttention(WeightScope layer, int hidden, AttentionParams params, boolean qkvBias,
                                       boolean outputBias, RotaryEmbedding rotary, int layerIndex) {
        WeightScope scope = layer.child(attention);
        int qSize = params.numHeads() * params.headDim();
        int kvSize = params.numKvHeads() * params.headDim();
        Linear[] projections;
        if (qkv.size() == 3) {
            projections = Linear.loadSiblings(scope, qkv, hidden, qkvBias, qSize, kvSize, kvSize);
        } else {
            PackedQkv layout = switch (qkvLayout) {
                case BLOCKS -> PackedQkv.blocks(qSize, kvSize, kvSize);
                case PER_KV_HEAD -> PackedQkv.perKvHead(params.numKvHeads(), params.numHeads() / params.numKvHeads(),
                        params.headDim());
            };
            projections = layout.load(scope, qkv.getFirst(), hidden, qkvBias);
        }
        return new SelfAttention(projections[0], projections[1], projections[2],
                Linear.load(scope, output, qSize, hidden, outputBias), rotary, params, layerIndex);
    }

    /** The gated MLP of the layer under {@code layer}. */
    public GatedMlp loadMlp(WeightScope layer, int hidden, int intermediate, boolean bias, Activation activation) {
        WeightScope scope = layer.child(mlp);
        Linear[] gateAndUp;
        if (gateUp.size() == 2) {
            gateAndUp = Linear.loadSiblings(scope, gateUp, hidden, bias, intermediate, intermediate);
        } else if (bias) {
            throw new IllegalArgumentException("a fused gate/up projection with biases is not supported");
        } else {
            gateAndUp = Linear.loadRowBlocks(scope, gateUp.getFirst(), hidden, intermediate, intermediate);
        }
        return new GatedMlp(gateAndUp[0], gateAndUp[1], Linear.load(scope, down, intermediate, hidden, bias), activation);
    }
}
