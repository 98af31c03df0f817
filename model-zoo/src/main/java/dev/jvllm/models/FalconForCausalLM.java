package dev.jvllm.models;

import dev.jvllm.config.ModelConfig;
import dev.jvllm.models.layers.Alibi;
import dev.jvllm.models.layers.DecoderLayer;
import dev.jvllm.models.layers.DecoderModel;
import dev.jvllm.models.layers.Embeddings;
import dev.jvllm.models.layers.LayerNorm;
import dev.jvllm.models.layers.Linear;
import dev.jvllm.models.layers.Mlp;
import dev.jvllm.models.layers.Norm;
import dev.jvllm.models.layers.PackedQkv;
import dev.jvllm.models.layers.RotaryEmbedding;
import dev.jvllm.models.layers.SelfAttention;
import dev.jvllm.models.layers.WeightScope;
import dev.jvllm.spi.Activation;
import dev.jvllm.spi.AttentionParams;
import dev.jvllm.spi.CausalLM;
import dev.jvllm.spi.ModelArchitecture;
import dev.jvllm.spi.ModelContext;
import dev.jvllm.spi.Tensor;

import java.util.ArrayList;
import java.util.List;

/**
 * Falcon. The original decoder (7B) has one key/value head ({@code multi_query}) stacked after the
 * queries, or per-head q/k/v without it, and attention and MLP in parallel on one LayerNorm
 * ({@code parallel_attn}) or in sequence. The new decoder (40B, 180B) groups each key/value head's
 * queries with it in the fused weight and normalizes attention and MLP inputs separately
 * ({@code num_ln_in_parallel_attn} 2). Positions are rotary, or ALiBi with {@code alibi}.
 */
public final class FalconForCausalLM implements ModelArchitecture {

    @Override
    public List<String> architectureNames() {
        return List.of("FalconForCausalLM", "RWForCausalLM");
    }

    @Override
    public CausalLM load(ModelContext context) {
        ModelConfig config = context.config();
        int hidden = config.hiddenSize();
        int heads = config.numHeads();
        int headDim = hidden / heads;
        double eps = config.doubleOr(1e-5, "layer_norm_epsilon");
        boolean bias = config.bool("bias", false);
        // The remote-code configs (RWForCausalLM) say "RefinedWeb" for the 40B decoder and name kv heads n_head_kv.
        boolean newArchitecture = config.bool("new_decoder_architecture", config.modelType().equals("RefinedWeb"));
        boolean parallel = config.bool("parallel_attn", true);
        int kvHeads;
        PackedQkv layout;
        if (newArchitecture) {
            kvHeads = config.intOr(heads, "num_kv_heads", "n_head_kv");
            layout = PackedQkv.perKvHead(kvHeads, heads / kvHeads, headDim);
        } else if (config.bool("multi_query", true)) {
            kvHeads = 1;
            layout = PackedQkv.blocks(heads * headDim, headDim, headDim);
        } else {
            kvHeads = heads;
            layout = PackedQkv.perHead(heads, headDim);
        }
        float scale = (float) (1 / Math.sqrt(headDim));
        boolean alibi = config.bool("alibi", false);
        // Falcon adds the ALiBi bias before scaling the scores, so its slopes are scaled too.
        AttentionParams params = new AttentionParams(heads, kvHeads, headDim, scale, 0, 0f,
                alibi ? Alibi.scaled(Alibi.slopes(heads), scale) : null);
        RotaryEmbedding rotary = alibi ? null
                : RotaryEmbedding.create(context.backend(), config.rope(), headDim, context.maxModelLen(), true);
        boolean twoNorms = newArchitecture && config.intOr(2, "num_ln_in_parallel_attn") == 2;
        Activation act = Activation.fromConfig(config.raw().path("activation").asText("gelu"));
        int ffn = config.intOr(4 * hidden, "ffn_hidden_size");

        WeightScope root = WeightScope.root(context.checkpoint(), context.backend());
        WeightScope model = root.child("transformer");
        List<DecoderLayer> layers = new ArrayList<>();
        for (int i = 0; i < config.numLayers(); i++) {
            WeightScope layer = model.child("h").child(Integer.toString(i));
            WeightScope attn = layer.child("self_attention");
            Linear[] qkv = layout.load(attn, "query_key_value", hidden, bias);
            SelfAttention attention = new SelfAttention(qkv[0], qkv[1], qkv[2],
                    Linear.load(attn, "dense", hidden, hidden, bias), rotary, params, i);
            Mlp mlp = Mlp.load(layer.child("mlp"), "dense_h_to_4h", "dense_4h_to_h", hidden, ffn, act, bias);
            Norm attentionNorm = LayerNorm.load(layer, twoNorms ? "ln_attn" : "input_layernorm", hidden, eps);
            if (twoNorms) {
                layers.add(new DecoderLayer(attentionNorm, attention, LayerNorm.load(layer, "ln_mlp", hidden, eps), mlp,
                        DecoderLayer.Residual.PARALLEL));
            } else if (newArchitecture || parallel) {
                layers.add(new DecoderLayer(attentionNorm, attention, null, mlp, DecoderLayer.Residual.PARALLEL));
            } else {
                layers.add(new DecoderLayer(attentionNorm, attention,
                        LayerNorm.load(layer, "post_attention_layernorm", hidden, eps), mlp, DecoderLayer.Residual.SEQUENTIAL));
            }
        }
        Tensor embed = model.tensor("word_embeddings.weight", config.vocabSize(), hidden);
        return new DecoderModel(context.backend(), hidden, Embeddings.tokens(embed), layers,
                LayerNorm.load(model, "ln_f", hidden, eps), null,
                DecoderModel.lmHead(root, "lm_head", embed, config.bool("tie_word_embeddings", true)));
    }

    @Override
    public List<String> modelTypes() {
        return List.of("falcon");
    }
}
