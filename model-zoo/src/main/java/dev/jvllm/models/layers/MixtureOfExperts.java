package dev.jvllm.models.layers;

import com.fasterxml.jackson.databind.JsonNode;
import dev.jvllm.config.ConfigException;
import dev.jvllm.config.ModelConfig;
import dev.jvllm.spi.Activation;
import dev.jvllm.spi.Backend;
import dev.jvllm.spi.ExpertWeights;
import dev.jvllm.spi.Tensor;
import dev.jvllm.weights.WeightsException;

import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.function.Function;
import java.util.function.IntPredicate;

/**
 * A sparse mixture-of-experts feed-forward block (Shazeer et al., arXiv:1701.06538; Mixtral,
 * arXiv:2401.04088): a linear router scores the experts for each token, {@link ExpertRouter} picks
 * the top k and their weights, and the token's output is the weighted sum of those SwiGLU experts'
 * outputs, plus an always-on shared expert when the family has one (DeepSeekMoE, arXiv:2401.06066;
 * Qwen-MoE gates it by {@code sigmoid(shared_expert_gate · x)}).
 *
 * <p>Nothing is read back to the host for the softmax top-k routers (Mixtral, Qwen-MoE):
 * {@link Backend#routeSoftmaxTopK} routes where the logits are, and
 * {@link Backend#expertFeedForward} runs every routed expert in one grouped pass (tokens grouped
 * by expert, each expert's weights read once per layer), and Qwen's shared-expert gate is applied
 * by {@link Backend#addSigmoidGatedRows}; on a GPU the layer is a fixed sequence of launches. DeepSeek's
 * group-limited and sigmoid routers run on the host from the logits read back, and their routes
 * are uploaded for the same grouped pass.
 *
 * @param experts          the routed experts' weights, prepared by {@link Backend#expertWeights}
 * @param sharedExpert     null when none
 * @param sharedExpertGate [1, hidden]: the shared expert's output is scaled by the sigmoid of its
 *                         product with x; null to add it as it is (DeepSeek)
 */
public record MixtureOfExperts(Linear router, ExpertRouter routing, ExpertWeights experts, GatedMlp sharedExpert,
                               Linear sharedExpertGate) implements FeedForward {

    /** The checkpoint names of an expert's gate, up and down projections. */
    public record ExpertNames(String gate, String up, String down) {
        /** {@code gate_proj, up_proj, down_proj} (Qwen-MoE, DeepSeek). */
        public static final ExpertNames LLAMA = new ExpertNames("gate_proj", "up_proj", "down_proj");
        /** {@code w1, w3, w2} (Mixtral's original checkpoints). */
        public static final ExpertNames MIXTRAL = new ExpertNames("w1", "w3", "w2");
    }

    public MixtureOfExperts {
        if (experts.count() != routing.numExperts() || router.outFeatures() != routing.numExperts()) {
            throw new IllegalArgumentException("a router of " + router.outFeatures() + " outputs and "
                    + experts.count() + " experts for routing over " + routing.numExperts());
        }
    }

    /**
     * The router {@code <block>.gate} and the experts of {@code <block>.experts}: one module per
     * expert ({@code experts.<e>.<gate|up|down>.weight}, as checkpoints are published) or the
     * stacked [experts, 2 × intermediate, hidden] {@code experts.gate_up_proj} and [experts, hidden,
     * intermediate] {@code experts.down_proj} that Transformers 5 keeps in memory.
     */
    public static MixtureOfExperts load(WeightScope block, ExpertRouter routing, int hidden, int intermediate,
                                        ExpertNames names) {
        Linear router = Linear.load(block, "gate", hidden, routing.numExperts(), false);
        ExpertWeights experts = loadExperts(block.child("experts"), routing.numExperts(), hidden, intermediate, names);
        return new MixtureOfExperts(router, routing, experts, null, null);
    }

    private static ExpertWeights loadExperts(WeightScope experts, int count, int hidden, int intermediate,
                                             ExpertNames names) {
        // The expert kernels read unquantized weights: 4-bit experts are decoded at load, not uploaded twice.
        WeightScope scope = experts.decoded();
        List<Tensor> gates = new ArrayList<>(count), ups = new ArrayList<>(count), downs = new ArrayList<>(count);
        if (scope.has("gate_up_proj")) {
            Tensor gateUp = scope.tensor("gate_up_proj", count, 2L * intermediate, hidden);
            Tensor down = scope.tensor("down_proj", count, hidden, intermediate);
            for (int e = 0; e < count; e++) {
                int first = 2 * intermediate * e;
                gates.add(gateUp.rows(first, intermediate));
                ups.add(gateUp.rows(first + intermediate, intermediate));
                downs.add(down.rows(hidden * e, hidden));
            }
        } else if (!scope.has("0." + names.gate() + ".weight")) {
            throw new WeightsException("no experts under '" + scope.prefix() + "': neither '" + scope.prefix()
                    + "gate_up_proj' nor '" + scope.prefix() + "0." + names.gate() + ".weight' is in the checkpoint");
        } else {
            for (int e = 0; e < count; e++) {
                GatedMlp expert = loadExpert(scope.child(Integer.toString(e)), hidden, intermediate, names);
                gates.add(expert.gate().weight());
                ups.add(expert.up().weight());
                downs.add(expert.down().weight());
            }
        }
        return scope.backend().expertWeights(gates, ups, downs);
    }

    /** One SwiGLU expert (routed or shared) under {@code expert}, without biases. */
    public static GatedMlp loadExpert(WeightScope expert, int hidden, int intermediate, ExpertNames names) {
        return new GatedMlp(
                Linear.load(expert, names.gate(), hidden, intermediate, false),
                Linear.load(expert, names.up(), hidden, intermediate, false),
                Linear.load(expert, names.down(), intermediate, hidden, false),
                Activation.SILU);
    }

    /** This block with an always-on shared expert, scaled per token by {@code sigmoid(gate · x)} when gate is given. */
    public MixtureOfExperts withSharedExpert(GatedMlp expert, Linear gate) {
        return new MixtureOfExperts(router, routing, experts, expert, gate);
    }

    @Override
    public void forward(Backend backend, Tensor x, Scratch scratch, Tensor out) {
        int tokens = x.rows();
        int k = routing.topK();
        Tensor logits = scratch.get("moe.router", tokens, routing.numExperts());
        router.apply(backend, x, logits);
        Tensor expertIds;
        Tensor weights;
        if (routing.isPlainSoftmaxTopK()) {
            expertIds = scratch.indices("moe.experts", tokens, k);
            weights = scratch.get("moe.weights", tokens, k);
            backend.routeSoftmaxTopK(logits, k, routing.normalize(), expertIds, weights);
        } else {
            ExpertRouter.Routes routes = routing.route(backend.toFloatArray(logits), tokens);
            expertIds = backend.indices(routes.experts()).reshape(tokens, k);
            weights = backend.stepValues(routes.weights(), tokens, k);
        }
        backend.expertFeedForward(x, experts, expertIds, weights, out);
        if (sharedExpert != null) {
            Tensor shared = scratch.get("moe.shared", tokens, x.cols());
            sharedExpert.forward(backend, x, scratch, shared);
            if (sharedExpertGate == null) {
                backend.add(out, shared, out);
            } else {
                Tensor gate = scratch.get("moe.shared.gate", tokens, 1);
                sharedExpertGate.apply(backend, x, gate);
                backend.addSigmoidGatedRows(shared, gate, out);
            }
        }
    }

    // ---- the families' blocks ---------------------------------------------------------------

    /** Mixtral: every layer sparse, under {@code block_sparse_moe} (or Transformers 5's {@code mlp}), renormalized top k. */
    public static LayerPartLoader<FeedForward> mixtral(ModelConfig config) {
        ExpertRouter routing = ExpertRouter.softmaxTopK(required(config, "num_local_experts"),
                required(config, "num_experts_per_tok"), true);
        return (model, layer, index) -> {
            WeightScope block = layer.has("block_sparse_moe.gate.weight") ? layer.child("block_sparse_moe") : layer.child("mlp");
            return load(block, routing, config.hiddenSize(), config.intermediateSize(), ExpertNames.MIXTRAL);
        };
    }

    /**
     * Qwen2-MoE and Qwen3-MoE: layer i is sparse unless listed in {@code mlp_only_layers}, when
     * {@code (i + 1)} is a multiple of {@code decoder_sparse_step}; experts of
     * {@code moe_intermediate_size}; a {@code shared_expert} gated by {@code shared_expert_gate}
     * when {@code shared_expert_intermediate_size} is positive (Qwen2-MoE); dense layers are
     * {@code intermediate_size} MLPs.
     */
    public static LayerPartLoader<FeedForward> qwen(ModelConfig config) {
        int numExperts = config.intOr(0, "num_experts", "num_local_experts");
        int step = config.intOr(1, "decoder_sparse_step");
        if (step <= 0) {
            throw new ConfigException(config.source() + ": field 'decoder_sparse_step' must be positive, got " + step);
        }
        Set<Integer> denseLayers = layerList(config, "mlp_only_layers");
        IntPredicate sparse = i -> numExperts > 0 && !denseLayers.contains(i) && (i + 1) % step == 0;
        int sharedIntermediate = config.intOr(0, "shared_expert_intermediate_size");
        int hidden = config.hiddenSize();
        return (model, layer, index) -> {
            WeightScope block = layer.child("mlp");
            if (!sparse.test(index)) {
                return WeightNames.LLAMA.loadMlp(layer, hidden, config.intermediateSize(), false, Activation.SILU);
            }
            ExpertRouter routing = ExpertRouter.softmaxTopK(numExperts, required(config, "num_experts_per_tok"),
                    config.bool("norm_topk_prob", false));
            MixtureOfExperts moe = load(block, routing, hidden, required(config, "moe_intermediate_size"), ExpertNames.LLAMA);
            if (sharedIntermediate <= 0) {
                return moe;
            }
            return moe.withSharedExpert(loadExpert(block.child("shared_expert"), hidden, sharedIntermediate, ExpertNames.LLAMA),
                    Linear.load(block, "shared_expert_gate", hidden, 1, false));
        };
    }

    /**
     * DeepSeek-V2/V3: layer i is sparse from {@code first_k_dense_replace} on, every
     * {@code moe_layer_freq}-th layer, when {@code n_routed_experts} is set; experts of
     * {@code moe_intermediate_size}; {@code n_shared_experts} shared experts summed as one MLP of
     * {@code n_shared_experts × moe_intermediate_size}; dense layers are {@code intermediate_size} MLPs.
     *
     * @param routing the family's router for a sparse layer's {@code mlp.gate} scope
     */
    public static LayerPartLoader<FeedForward> deepSeek(ModelConfig config,
                                                        Function<WeightScope, ExpertRouter> routing) {
        int routed = config.intOr(0, "n_routed_experts");
        int firstSparse = config.intOr(0, "first_k_dense_replace");
        int frequency = config.intOr(1, "moe_layer_freq");
        int shared = config.intOr(0, "n_shared_experts");
        int hidden = config.hiddenSize();
        return (model, layer, index) -> {
            WeightScope block = layer.child("mlp");
            if (routed <= 0 || index < firstSparse || index % frequency != 0) {
                return WeightNames.LLAMA.loadMlp(layer, hidden, config.intermediateSize(), false, Activation.SILU);
            }
            int intermediate = required(config, "moe_intermediate_size");
            MixtureOfExperts moe = load(block, routing.apply(block.child("gate")), hidden, intermediate, ExpertNames.LLAMA);
            return shared <= 0 ? moe
                    : moe.withSharedExpert(loadExpert(block.child("shared_experts"), hidden, shared * intermediate, ExpertNames.LLAMA), null);
        };
    }

    private static int required(ModelConfig config, String field) {
        return ConfigValues.positiveInt(config, field, "a mixture of experts");
    }

    private static Set<Integer> layerList(ModelConfig config, String field) {
        JsonNode list = config.raw().path(field);
        Set<Integer> layers = new HashSet<>();
        if (list.isArray()) {
            list.forEach(n -> layers.add(n.asInt()));
        } else if (!list.isMissingNode() && !list.isNull()) {
            throw new ConfigException(config.source() + ": field '" + field + "' must be a list of layer indices, got " + list);
        }
        return layers;
    }
}
