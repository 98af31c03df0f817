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
 * GPT-J: rotary on the first {@code rotary_dim} features of each head with adjacent pairs rotated
 * together, attention and MLP in parallel on one LayerNorm, q/k/v without biases, an LM head with one.
 */
public final class GptJForCausalLM implements ModelArchitecture {

    @Override
    public List<String> architectureNames() {
        return List.of("GPTJForCausalLM");
    }

    @Override
    public CausalLM load(ModelContext context) {
        ModelConfig config = context.config();
        int hidden = config.hiddenSize();
        int heads = config.numHeads();
        int headDim = hidden / heads;
        double eps = config.doubleOr(1e-5, "layer_norm_epsilon");
        int rotaryDim = config.intOr(-1, "rotary_dim");
        if (rotaryDim <= 0) {
            // Without it GPT-J's sin/cos table spans the whole hidden size, a form no checkpoint uses.
            throw new ConfigException(config.source() + ": GPT-J needs rotary_dim");
        }
        RotaryEmbedding rotary = RotaryEmbedding.create(context.backend(), config.rope(), rotaryDim,
                context.maxModelLen(), false, headDim);
        AttentionParams params = AttentionParams.causal(heads, heads, headDim);

        WeightScope root = WeightScope.root(context.checkpoint(), context.backend());
        WeightScope model = root.child("transformer");
        List<DecoderLayer> layers = new ArrayList<>();
        for (int i = 0; i < config.numLayers(); i++) {
            WeightScope layer = model.child("h").child(Integer.toString(i));
            WeightScope attn = layer.child("attn");
            SelfAttention attention = new SelfAttention(
                    Linear.load(attn, "q_proj", hidden, hidden, false), Linear.load(attn, "k_proj", hidden, hidden, false),
                    Linear.load(attn, "v_proj", hidden, hidden, false), Linear.load(attn, "out_proj", hidden, hidden, false),
                    rotary, params, i);
            layers.add(new DecoderLayer(LayerNorm.load(layer, "ln_1", hidden, eps), attention, null,
                    Mlp.load(layer.child("mlp"), "fc_in", "fc_out", hidden, config.intOr(4 * hidden, "n_inner"),
                            Activation.fromConfig(config.hiddenAct()), true),
                    DecoderLayer.Residual.PARALLEL));
        }
        Tensor wte = model.tensor("wte.weight", config.vocabSize(), hidden);
        return new DecoderModel(context.backend(), hidden, Embeddings.tokens(wte), layers,
                LayerNorm.load(model, "ln_f", hidden, eps), null,
                DecoderModel.lmHead(root, "lm_head", wte, config.tieWordEmbeddings()));
    }

    @Override
    public List<String> modelTypes() {
        return List.of("gptj");
    }
}
