package dev.jvllm.models;

import com.fasterxml.jackson.databind.JsonNode;
import dev.jvllm.config.ConfigException;
import dev.jvllm.config.ModelConfig;
import dev.jvllm.models.layers.Alibi;
import dev.jvllm.models.layers.DecoderLayer;
import dev.jvllm.models.layers.DecoderModel;
import dev.jvllm.models.layers.Embeddings;
import dev.jvllm.models.layers.LayerNorm;
import dev.jvllm.models.layers.Linear;
import dev.jvllm.models.layers.Mlp;
import dev.jvllm.models.layers.PackedQkv;
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
 * MPT: ALiBi with MPT's own slopes ({@code alibi_bias_max}), a fused [q; k; v] Wqkv, pre-norm
 * LayerNorm layers and a GELU MLP, all without biases ({@code no_bias}); LM head tied. Its
 * hyperparameters have their own names (d_model, n_heads, n_layers, expansion_ratio, attn_config).
 */
public final class MptForCausalLM implements ModelArchitecture {

    @Override
    public List<String> architectureNames() {
        return List.of("MptForCausalLM", "MPTForCausalLM");
    }

    @Override
    public CausalLM load(ModelContext context) {
        ModelConfig config = context.config();
        JsonNode attnConfig = config.raw().path("attn_config");
        JsonNode clip = attnConfig.path("clip_qkv");
        if (!clip.isMissingNode() && !clip.isNull() && (!clip.isNumber() || clip.doubleValue() <= 0)) {
            throw new ConfigException(config.source() + ": attn_config.clip_qkv must be a positive number, got " + clip);
        }
        float clipQkv = clip.isNumber() ? clip.floatValue() : 0f;
        int hidden = config.intOr(-1, "d_model", "hidden_size");
        int heads = config.intOr(-1, "n_heads", "num_attention_heads");
        if (hidden <= 0 || heads <= 0 || hidden % heads != 0) {
            throw new ConfigException(config.source() + ": MPT needs d_model a positive multiple of n_heads");
        }
        int headDim = hidden / heads;
        int intermediate = config.intOr(4, "expansion_ratio") * hidden;
        boolean bias = !config.bool("no_bias", true);
        double eps = config.doubleOr(1e-5, "layer_norm_epsilon");
        double scale = attnConfig.path("softmax_scale").isNumber()
                ? attnConfig.path("softmax_scale").doubleValue() : 1 / Math.sqrt(headDim);
        // Transformers applies ALiBi to every MPT checkpoint (all published ones set attn_config.alibi).
        AttentionParams params = new AttentionParams(heads, heads, headDim, (float) scale, 0, 0f,
                Alibi.mptSlopes(heads, attnConfig.path("alibi_bias_max").asDouble(8)));

        WeightScope root = WeightScope.root(context.checkpoint(), context.backend());
        WeightScope model = root.child("transformer");
        List<DecoderLayer> layers = new ArrayList<>();
        for (int i = 0; i < config.intOr(-1, "n_layers", "num_hidden_layers"); i++) {
            WeightScope block = model.child("blocks").child(Integer.toString(i));
            WeightScope attn = block.child("attn");
            Linear[] qkv = PackedQkv.blocks(hidden, hidden, hidden).load(attn, "Wqkv", hidden, bias);
            if (clipQkv > 0) {
                // Clamping the fused Wqkv output is clamping each of its row blocks.
                for (int p = 0; p < qkv.length; p++) qkv[p] = qkv[p].clamped(clipQkv);
            }
            SelfAttention attention = new SelfAttention(qkv[0], qkv[1], qkv[2],
                    Linear.load(attn, "out_proj", hidden, hidden, bias), null, params, i);
            layers.add(new DecoderLayer(LayerNorm.load(block, "norm_1", hidden, eps, bias), attention,
                    LayerNorm.load(block, "norm_2", hidden, eps, bias),
                    Mlp.load(block.child("ffn"), "up_proj", "down_proj", hidden, intermediate, Activation.GELU, bias),
                    DecoderLayer.Residual.SEQUENTIAL));
        }
        Tensor wte = model.tensor("wte.weight", config.vocabSize(), hidden);
        return new DecoderModel(context.backend(), hidden, Embeddings.tokens(wte), layers,
                LayerNorm.load(model, "norm_f", hidden, eps, bias), null,
                DecoderModel.lmHead(root, "lm_head", wte, config.bool("tie_word_embeddings", true)));
    }

    @Override
    public List<String> modelTypes() {
        return List.of("mpt");
    }
}
