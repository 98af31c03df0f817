package dev.jvllm.models;

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
 * BLOOM: ALiBi instead of position embeddings, a LayerNorm right after the token embeddings, a
 * fused query_key_value laid out per head, and a tanh-GELU MLP; LM head tied to the embeddings.
 */
public final class BloomForCausalLM implements ModelArchitecture {

    @Override
    public List<String> architectureNames() {
        return List.of("BloomForCausalLM");
    }

    @Override
    public CausalLM load(ModelContext context) {
        ModelConfig config = context.config();
        if (config.bool("apply_residual_connection_post_layernorm", false)) {
            throw new ConfigException(config.source() + ": BLOOM with apply_residual_connection_post_layernorm is not supported");
        }
        int hidden = config.hiddenSize();
        int heads = config.numHeads();
        int headDim = hidden / heads;
        double eps = config.doubleOr(1e-5, "layer_norm_epsilon");
        AttentionParams params = new AttentionParams(heads, heads, headDim, (float) (1 / Math.sqrt(headDim)), 0, 0f,
                Alibi.slopes(heads));

        WeightScope root = WeightScope.root(context.checkpoint(), context.backend());
        // Transformers saves under "transformer."; the original BigScience checkpoints have no prefix.
        WeightScope model = root.has("transformer.word_embeddings.weight") ? root.child("transformer") : root;
        List<DecoderLayer> layers = new ArrayList<>();
        for (int i = 0; i < config.numLayers(); i++) {
            WeightScope layer = model.child("h").child(Integer.toString(i));
            WeightScope attn = layer.child("self_attention");
            Linear[] qkv = PackedQkv.perHead(heads, headDim).load(attn, "query_key_value", hidden, true);
            SelfAttention attention = new SelfAttention(qkv[0], qkv[1], qkv[2],
                    Linear.load(attn, "dense", hidden, hidden, true), null, params, i);
            layers.add(new DecoderLayer(LayerNorm.load(layer, "input_layernorm", hidden, eps), attention,
                    LayerNorm.load(layer, "post_attention_layernorm", hidden, eps),
                    Mlp.load(layer.child("mlp"), "dense_h_to_4h", "dense_4h_to_h", hidden, 4 * hidden, Activation.GELU_TANH, true),
                    DecoderLayer.Residual.SEQUENTIAL));
        }
        Tensor embed = model.tensor("word_embeddings.weight", config.vocabSize(), hidden);
        Embeddings embeddings = new Embeddings(embed, null, null, 0,
                LayerNorm.load(model, "word_embeddings_layernorm", hidden, eps));
        return new DecoderModel(context.backend(), hidden, embeddings, layers, LayerNorm.load(model, "ln_f", hidden, eps),
                null, DecoderModel.lmHead(root, "lm_head", embed, config.bool("tie_word_embeddings", true)));
    }

    @Override
    public List<String> modelTypes() {
        return List.of("bloom");
    }
}
