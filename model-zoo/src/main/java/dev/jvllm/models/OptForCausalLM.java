package dev.jvllm.models;

import dev.jvllm.config.ConfigException;
import dev.jvllm.config.ModelConfig;
import dev.jvllm.models.layers.DecoderLayer;
import dev.jvllm.models.layers.DecoderModel;
import dev.jvllm.models.layers.Embeddings;
import dev.jvllm.models.layers.LayerNorm;
import dev.jvllm.models.layers.Linear;
import dev.jvllm.models.layers.Mlp;
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
 * OPT (arXiv:2205.01068): learned positions whose table starts two rows in, ReLU MLP, pre-norm
 * layers except OPT-350m's post-norm ({@code do_layer_norm_before: false}), and embeddings
 * narrower than the hidden size projected in and out ({@code word_embed_proj_dim}).
 */
public final class OptForCausalLM implements ModelArchitecture {

    /** OPT's position table reserves its first two rows (a fairseq padding convention). */
    private static final int POSITION_OFFSET = 2;

    @Override
    public List<String> architectureNames() {
        return List.of("OPTForCausalLM");
    }

    @Override
    public CausalLM load(ModelContext context) {
        ModelConfig config = context.config();
        int hidden = config.hiddenSize();
        int heads = config.numHeads();
        int embedDim = config.intOr(hidden, "word_embed_proj_dim");
        boolean preNorm = config.bool("do_layer_norm_before", true);
        boolean bias = config.bool("enable_bias", true);
        if (!config.bool("layer_norm_elementwise_affine", true)) {
            throw new ConfigException(config.source() + ": OPT without layer-norm weights is not supported");
        }
        double eps = 1e-5;
        AttentionParams params = AttentionParams.causal(heads, heads, config.headDim());
        Activation act = Activation.fromConfig(config.hiddenAct());

        WeightScope root = WeightScope.root(context.checkpoint(), context.backend());
        WeightScope decoder = root.child("model").child("decoder");
        List<DecoderLayer> layers = new ArrayList<>();
        for (int i = 0; i < config.numLayers(); i++) {
            WeightScope layer = decoder.child("layers").child(Integer.toString(i));
            WeightScope attn = layer.child("self_attn");
            SelfAttention attention = new SelfAttention(
                    Linear.load(attn, "q_proj", hidden, hidden, bias), Linear.load(attn, "k_proj", hidden, hidden, bias),
                    Linear.load(attn, "v_proj", hidden, hidden, bias), Linear.load(attn, "out_proj", hidden, hidden, bias),
                    null, params, i);
            layers.add(new DecoderLayer(LayerNorm.load(layer, "self_attn_layer_norm", hidden, eps), attention,
                    LayerNorm.load(layer, "final_layer_norm", hidden, eps),
                    Mlp.load(layer, "fc1", "fc2", hidden, config.intermediateSize(), act, bias),
                    preNorm ? DecoderLayer.Residual.SEQUENTIAL : DecoderLayer.Residual.POST_NORM));
        }
        Tensor tokens = decoder.tensor("embed_tokens.weight", config.vocabSize(), embedDim);
        Tensor positions = decoder.tensor("embed_positions.weight", config.maxPositionEmbeddings() + POSITION_OFFSET, hidden);
        boolean projected = embedDim != hidden;
        Linear projectIn = projected ? Linear.load(decoder, "project_in", embedDim, hidden, false) : null;
        Linear projectOut = projected ? Linear.load(decoder, "project_out", hidden, embedDim, false) : null;
        // Without pre-norm there is no final norm (OPT-350m); a converted checkpoint may also have dropped it.
        LayerNorm finalNorm = preNorm && decoder.has("final_layer_norm.weight")
                ? LayerNorm.load(decoder, "final_layer_norm", hidden, eps) : null;
        return new DecoderModel(context.backend(), hidden, new Embeddings(tokens, projectIn, positions, POSITION_OFFSET, null),
                layers, finalNorm, projectOut, DecoderModel.lmHead(root, "lm_head", tokens, config.bool("tie_word_embeddings", true)));
    }

    @Override
    public List<String> modelTypes() {
        return List.of("opt");
    }
}
