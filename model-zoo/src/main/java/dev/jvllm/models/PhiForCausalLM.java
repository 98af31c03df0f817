package dev.jvllm.models;

import dev.jvllm.config.ConfigException;
import dev.jvllm.config.ModelConfig;
import dev.jvllm.models.layers.DecoderLayer;
import dev.jvllm.models.layers.DecoderModel;
import dev.jvllm.models.layers.Embeddings;
import dev.jvllm.models.layers.LayerNorm;
import dev.jvllm.models.layers.Linear;
import dev.jvllm.models.layers.Mlp;
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
 * Phi-1/1.5/2: attention and MLP side by side on one LayerNorm's output
 * ({@code x + attn(ln(x)) + mlp(ln(x))}), rotary on part of each head, biases everywhere,
 * including the LM head.
 */
public final class PhiForCausalLM implements ModelArchitecture {

    @Override
    public List<String> architectureNames() {
        return List.of("PhiForCausalLM");
    }

    @Override
    public CausalLM load(ModelContext context) {
        ModelConfig config = context.config();
        if (config.bool("qk_layernorm", false)) {
            throw new ConfigException(config.source() + ": Phi with qk_layernorm is not supported");
        }
        int hidden = config.hiddenSize();
        int headDim = config.headDim();
        double eps = config.doubleOr(1e-5, "layer_norm_eps");
        AttentionParams params = AttentionParams.causal(config.numHeads(), config.numKvHeads(), headDim);
        RotaryEmbedding rotary = RotaryEmbedding.create(context.backend(), config.rope(), headDim, context.maxModelLen(), true);
        int qSize = params.numHeads() * headDim, kvSize = params.numKvHeads() * headDim;

        WeightScope root = WeightScope.root(context.checkpoint(), context.backend());
        WeightScope model = root.child("model");
        List<DecoderLayer> layers = new ArrayList<>();
        for (int i = 0; i < config.numLayers(); i++) {
            WeightScope layer = model.child("layers").child(Integer.toString(i));
            WeightScope attn = layer.child("self_attn");
            SelfAttention attention = new SelfAttention(
                    Linear.load(attn, "q_proj", hidden, qSize, true), Linear.load(attn, "k_proj", hidden, kvSize, true),
                    Linear.load(attn, "v_proj", hidden, kvSize, true), Linear.load(attn, "dense", qSize, hidden, true),
                    rotary, params, i);
            layers.add(new DecoderLayer(LayerNorm.load(layer, "input_layernorm", hidden, eps), attention, null,
                    Mlp.load(layer.child("mlp"), "fc1", "fc2", hidden, config.intermediateSize(),
                            Activation.fromConfig(config.hiddenAct()), true),
                    DecoderLayer.Residual.PARALLEL));
        }
        Tensor embed = model.tensor("embed_tokens.weight", config.vocabSize(), hidden);
        return new DecoderModel(context.backend(), hidden, Embeddings.tokens(embed), layers,
                LayerNorm.load(model, "final_layernorm", hidden, eps), null,
                DecoderModel.lmHead(root, "lm_head", embed, config.tieWordEmbeddings()));
    }

    @Override
    public List<String> modelTypes() {
        return List.of("phi");
    }
}
