package dev.jvllm.models;

import dev.jvllm.config.ModelConfig;
import dev.jvllm.config.RopeConfig;
import dev.jvllm.models.layers.DecoderLayer;
import dev.jvllm.models.layers.DecoderModel;
import dev.jvllm.models.layers.Embeddings;
import dev.jvllm.models.layers.LayerNorm;
import dev.jvllm.models.layers.Linear;
import dev.jvllm.models.layers.Mlp;
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
 * GPT-NeoX (Pythia, GPT-NeoX-20B): rotary on the first {@code rotary_pct} of each head, a fused
 * query_key_value laid out per head, LayerNorm, and by default the parallel residual
 * {@code x + attn(ln1(x)) + mlp(ln2(x))}.
 */
public final class GptNeoXForCausalLM implements ModelArchitecture {

    @Override
    public List<String> architectureNames() {
        return List.of("GPTNeoXForCausalLM");
    }

    @Override
    public CausalLM load(ModelContext context) {
        ModelConfig config = context.config();
        int hidden = config.hiddenSize();
        int heads = config.numHeads();
        int headDim = config.headDim();
        double eps = config.doubleOr(1e-5, "layer_norm_eps");
        boolean bias = config.bool("attention_bias", true);
        RotaryEmbedding rotary = RotaryEmbedding.create(context.backend(), rope(config), rotaryDim(config, headDim),
                context.maxModelLen(), true, headDim);
        AttentionParams params = AttentionParams.causal(heads, heads, headDim);
        DecoderLayer.Residual residual = config.bool("use_parallel_residual", true)
                ? DecoderLayer.Residual.PARALLEL : DecoderLayer.Residual.SEQUENTIAL;

        WeightScope root = WeightScope.root(context.checkpoint(), context.backend());
        WeightScope model = root.child("gpt_neox");
        List<DecoderLayer> layers = new ArrayList<>();
        for (int i = 0; i < config.numLayers(); i++) {
            WeightScope layer = model.child("layers").child(Integer.toString(i));
            WeightScope attn = layer.child("attention");
            Linear[] qkv = PackedQkv.perHead(heads, headDim).load(attn, "query_key_value", hidden, bias);
            SelfAttention attention = new SelfAttention(qkv[0], qkv[1], qkv[2],
                    Linear.load(attn, "dense", hidden, hidden, bias), rotary, params, i);
            layers.add(new DecoderLayer(LayerNorm.load(layer, "input_layernorm", hidden, eps), attention,
                    LayerNorm.load(layer, "post_attention_layernorm", hidden, eps),
                    Mlp.load(layer.child("mlp"), "dense_h_to_4h", "dense_4h_to_h", hidden, config.intermediateSize(),
                            Activation.fromConfig(config.hiddenAct()), true),
                    residual));
        }
        Tensor embedIn = model.tensor("embed_in.weight", config.vocabSize(), hidden);
        return new DecoderModel(context.backend(), hidden, Embeddings.tokens(embedIn), layers,
                LayerNorm.load(model, "final_layer_norm", hidden, eps), null,
                DecoderModel.lmHead(root, "embed_out", embedIn, config.tieWordEmbeddings()));
    }

    /** Original checkpoints name the base {@code rotary_emb_base}; Transformers 5 moves it into rope_parameters. */
    private static RopeConfig rope(ModelConfig config) {
        RopeConfig rope = config.rope();
        double base = config.doubleOr(rope.theta(), "rotary_emb_base");
        return new RopeConfig(base, rope.type(), rope.factor(), rope.originalMaxPositions(), rope.partialRotaryFactor(),
                rope.parameters());
    }

    /** {@code int(headDim * rotary_pct)} as GPT-NeoX computes it (rope_parameters' partial_rotary_factor in Transformers 5). */
    private static int rotaryDim(ModelConfig config, int headDim) {
        double pct = config.doubleOr(-1, "rotary_pct");
        return pct > 0 ? (int) (headDim * pct) : config.rope().rotaryDim(headDim);
    }

    @Override
    public List<String> modelTypes() {
        return List.of("gpt_neox");
    }
}
