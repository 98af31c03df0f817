package dev.jvllm.models;

import dev.jvllm.config.ModelConfig;
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
import dev.jvllm.spi.Backend;
import dev.jvllm.spi.CausalLM;
import dev.jvllm.spi.ModelArchitecture;
import dev.jvllm.spi.ModelContext;
import dev.jvllm.spi.Tensor;
import dev.jvllm.weights.WeightTensor;
import dev.jvllm.weights.WeightsException;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * GPT-2: learned absolute positions, pre-norm LayerNorm layers, fused c_attn stored as Conv1D
 * ([in, out], so transposed at load), a GELU MLP and the LM head tied to the token embeddings.
 */
public final class Gpt2LMHeadModel implements ModelArchitecture {

    @Override
    public List<String> architectureNames() {
        return List.of("GPT2LMHeadModel");
    }

    @Override
    public CausalLM load(ModelContext context) {
        ModelConfig config = context.config();
        Backend backend = context.backend();
        int hidden = config.hiddenSize();
        int heads = config.numHeads();
        int headDim = hidden / heads;
        int inner = config.intOr(4 * hidden, "n_inner");
        double eps = config.doubleOr(1e-5, "layer_norm_epsilon");
        Activation act = Activation.fromConfig(config.hiddenAct());
        WeightScope root = WeightScope.root(context.checkpoint(), backend);
        // Transformers saves under "transformer."; the original OpenAI conversions have no prefix.
        WeightScope model = root.has("transformer.wte.weight") ? root.child("transformer") : root;

        List<DecoderLayer> layers = new ArrayList<>();
        for (int i = 0; i < config.numLayers(); i++) {
            WeightScope h = model.child("h").child(Integer.toString(i));
            float scale = config.bool("scale_attn_weights", true) ? (float) (1 / Math.sqrt(headDim)) : 1f;
            if (config.bool("scale_attn_by_inverse_layer_idx", false)) {
                scale /= i + 1;
            }
            AttentionParams params = new AttentionParams(heads, heads, headDim, scale, 0, 0f, null);
            Linear fused = conv1d(h.forRowBlocks(hidden, hidden, hidden), "attn.c_attn", hidden, 3 * hidden);
            Linear[] qkv = PackedQkv.blocks(hidden, hidden, hidden).split(fused.weight(), fused.bias(), hidden);
            SelfAttention attention = new SelfAttention(qkv[0], qkv[1], qkv[2], conv1d(h, "attn.c_proj", hidden, hidden),
                    null, params, i);
            Mlp mlp = new Mlp(conv1d(h, "mlp.c_fc", hidden, inner), act, conv1d(h, "mlp.c_proj", inner, hidden));
            layers.add(new DecoderLayer(LayerNorm.load(h, "ln_1", hidden, eps), attention,
                    LayerNorm.load(h, "ln_2", hidden, eps), mlp, DecoderLayer.Residual.SEQUENTIAL));
        }
        Tensor wte = model.tensor("wte.weight", config.vocabSize(), hidden);
        Tensor wpe = model.tensor("wpe.weight", config.maxPositionEmbeddings(), hidden);
        return new DecoderModel(backend, hidden, new Embeddings(wte, null, wpe, 0, null), layers,
                LayerNorm.load(model, "ln_f", hidden, eps), null,
                DecoderModel.lmHead(root, "lm_head", wte, config.bool("tie_word_embeddings", true)));
    }

    /**
     * A Conv1D layer: its weight is stored [in, out], the transpose of a Linear's, except in GPTQ's
     * checkpoints, which pack it as the [out, in] Linear it transposes to (and may keep it 4-bit).
     */
    private static Linear conv1d(WeightScope scope, String name, int in, int out) {
        if (scope.checkpoint().contains(scope.prefix() + name + ".qweight")) {
            return Linear.load(scope, name, in, out, true);
        }
        WeightTensor weight = scope.checkpoint().get(scope.prefix() + name + ".weight");
        if (!Arrays.equals(weight.shape(), new long[]{in, out})) {
            throw new WeightsException("tensor '" + weight.name() + "' has shape " + Arrays.toString(weight.shape())
                    + ", expected [" + in + ", " + out + "]");
        }
        return new Linear(scope.backend().transposedWeight(weight), scope.tensor(name + ".bias", out), in, out);
    }

    @Override
    public List<String> modelTypes() {
        return List.of("gpt2");
    }
}
