package dev.jvllm.models;

import com.fasterxml.jackson.databind.JsonNode;
import dev.jvllm.config.ModelConfig;
import dev.jvllm.models.layers.DecoderOptions;
import dev.jvllm.models.layers.DecoderOptions.Feature;
import dev.jvllm.models.layers.ExpertRouter;
import dev.jvllm.models.layers.Linear;
import dev.jvllm.models.layers.MixtureOfExperts;
import dev.jvllm.models.layers.WeightScope;
import dev.jvllm.models.layers.Mlp;
import dev.jvllm.models.layers.PreNormDecoder;
import dev.jvllm.models.layers.SlidingWindows;
import dev.jvllm.models.layers.WeightNames;
import dev.jvllm.models.layers.WeightNames.QkvLayout;
import dev.jvllm.spi.Activation;
import dev.jvllm.spi.CausalLM;
import dev.jvllm.spi.GenericArchitecture;
import dev.jvllm.spi.ModelContext;
import dev.jvllm.spi.PoolingModel;
import dev.jvllm.weights.Checkpoint;
import dev.jvllm.spi.ModelRegistry.UnsupportedArchitectureException;

import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The generic decoder, for causal LMs no native class serves (vLLM's Transformers fallback): a
 * pre-norm decoder assembled from what the checkpoint's tensor names show, as most decoders since
 * Llama name them (StableLM, StarCoder2 and many Llama derivatives load this way).
 *
 * <p>From layer 0's tensors under {@code model.layers.0.}: the attention under {@code self_attn}
 * ({@code q_proj}, {@code k_proj}, {@code v_proj}, or one {@code qkv_proj} or {@code W_pack}; the
 * output {@code o_proj}, {@code dense} or {@code out_proj}; biases where present; per-head
 * {@code q_norm}/{@code k_norm}); the feed-forward block under {@code mlp} (gated by
 * {@code gate_proj}/{@code up_proj} or {@code gate_up_proj}, else plain {@code up_proj}, {@code c_fc}
 * or {@code fc1} then {@code down_proj}, {@code c_proj} or {@code fc2}); {@code input_layernorm} and
 * {@code post_attention_layernorm} before them, RMSNorm, or LayerNorm where they have biases. Then
 * {@code model.embed_tokens}, {@code model.norm} and {@code lm_head} (or the tied embeddings). A
 * layer whose {@code block_sparse_moe} or {@code mlp} holds a router {@code gate} and
 * {@code experts.N} is a mixture of SwiGLU experts (Mixtral's or Qwen-MoE's names, a gated shared
 * expert where present), the top {@code num_experts_per_tok} renormalized for Mixtral's names and
 * as {@code norm_topk_prob} says otherwise.
 * Rotary positions, activation, heads and windows come from config.json.
 *
 * <p>Every tensor of the checkpoint must find its place, and every layer must hold what layer 0
 * holds: a tensor left over means a part this class does not know, so the load is refused naming
 * it rather than run without it. Config fields that change the math without a tensor to show it
 * (Granite's multipliers, soft-capping, parallel blocks) are refused by {@link #refusal}.
 */
public final class GenericDecoderForCausalLM implements GenericArchitecture {

    /**
     * Config fields of known families whose meaning the tensor names do not show, with the value
     * under which they change nothing (null: any value but JSON null changes something).
     */
    private static final Map<String, Object> UNSEEN_MEANINGS = Map.ofEntries(
            Map.entry("embedding_multiplier", 1.0), Map.entry("residual_multiplier", 1.0),
            Map.entry("attention_multiplier", "any"), Map.entry("logits_scaling", 1.0), Map.entry("logit_scale", 1.0),
            Map.entry("scale_emb", 1.0), Map.entry("scale_depth", "any"), Map.entry("dim_model_base", "any"),
            Map.entry("final_logit_softcapping", "any"), Map.entry("attn_logit_softcapping", "any"),
            Map.entry("query_pre_attn_scalar", "any"), Map.entry("use_parallel_residual", false),
            Map.entry("parallel_attn", false), Map.entry("parallel_residual", false), Map.entry("qk_layernorm", false),
            Map.entry("use_qk_norm", false), Map.entry("clip_qkv", "any"), Map.entry("alibi", false),
            Map.entry("use_alibi", false), Map.entry("n_routed_experts", "any"), Map.entry("sliding_window_pattern", "any"),
            Map.entry("no_rope_layers", "any"), Map.entry("attention_chunk_size", "any"));

    private static final Pattern LAYER = Pattern.compile("^model\\.layers\\.(\\d+)\\.(.+)$");

    @Override
    public List<String> architectureNames() {
        return List.of();
    }

    @Override
    public Optional<String> refusal(ModelConfig config) {
        return refusalOf(config);
    }

    private static Optional<String> refusalOf(ModelConfig config) {
        List<String> classes = config.architectures();
        if (classes.stream().noneMatch(name -> name.endsWith("ForCausalLM") || name.endsWith("LMHeadModel"))) {
            return Optional.of("it builds causal LMs, and architectures " + classes + " names none (…ForCausalLM)");
        }
        for (String field : List.of("hidden_size", "num_attention_heads", "num_hidden_layers", "vocab_size", "intermediate_size")) {
            if (config.intOr(-1, field) <= 0) {
                return Optional.of("config.json has no positive '" + field + "'");
            }
        }
        for (Map.Entry<String, Object> unseen : UNSEEN_MEANINGS.entrySet()) {
            JsonNode value = config.raw().get(unseen.getKey());
            if (value == null || value.isNull() || isNeutral(value, unseen.getValue())) continue;
            return Optional.of("config.json sets '" + unseen.getKey() + "' (" + value
                    + "), which changes the model in a way its tensor names do not show");
        }
        JsonNode types = config.raw().path("layer_types");
        for (JsonNode type : types) {
            if (!type.asText().equals("full_attention") && !type.asText().equals("sliding_attention")) {
                return Optional.of("layer_types holds '" + type.asText() + "' (only full_attention and sliding_attention are known)");
            }
        }
        return Optional.empty();
    }

    private static boolean isNeutral(JsonNode value, Object neutral) {
        return switch (neutral) {
            case Boolean b -> value.isBoolean() && value.booleanValue() == b;
            case Double d -> value.isNumber() && value.doubleValue() == d;
            default -> false;
        };
    }

    @Override
    public CausalLM load(ModelContext context) {
        return new PreNormDecoder(context, options(context));
    }

    /** As vLLM's pooling runner on a causal LM: the decoder without its LM head, its final-normed states pooled. */
    @Override
    public PoolingModel loadPooling(ModelContext context) {
        return new PreNormDecoder(context, options(context), "model", false);
    }

    private static DecoderOptions options(ModelContext context) {
        ModelConfig config = context.config();
        refusalOf(config).ifPresent(why -> {
            throw refused(config, why);
        });
        Layout layout = Layout.of(context.checkpoint(), config);
        WeightNames names = WeightNames.LLAMA.attention("self_attn", layout.output, QkvLayout.BLOCKS, layout.qkv.toArray(String[]::new));
        if (!layout.gateUp.isEmpty()) {
            names = names.mlp("mlp", layout.down, layout.gateUp.toArray(String[]::new));
        }
        DecoderOptions.Builder options = DecoderOptions.builder(config)
                .names(names)
                .attentionBiases(layout.qkvBias, layout.outputBias)
                .mlpBias(layout.mlpBias)
                .slidingWindows(SlidingWindows.statedPerLayer(config));
        if (layout.qkNorm) options.with(Feature.QK_NORM);
        if (layout.layerNorms) options.with(Feature.LAYER_NORMS);
        Activation activation = Activation.fromConfig(config.hiddenAct());
        int hidden = config.hiddenSize();
        Layout.Experts experts = layout.experts;
        ExpertRouter routing = experts == null ? null : ExpertRouter.softmaxTopK(experts.count(), experts.topK(), experts.renormalize());
        WeightNames denseNames = names;
        options.feedForward((model, layer, index) -> {
            if (layout.sparse[index]) {
                WeightScope block = layer.child(experts.scope());
                MixtureOfExperts moe = MixtureOfExperts.load(block, routing, hidden, experts.intermediate(), experts.names());
                return experts.sharedIntermediate() <= 0 ? moe : moe.withSharedExpert(
                        MixtureOfExperts.loadExpert(block.child("shared_expert"), hidden, experts.sharedIntermediate(),
                                MixtureOfExperts.ExpertNames.LLAMA),
                        Linear.load(block, "shared_expert_gate", hidden, 1, false));
            }
            if (layout.gateUp.isEmpty()) {
                return Mlp.load(layer.child("mlp"), layout.up, layout.down, hidden, config.intermediateSize(), activation,
                        layout.mlpBias);
            }
            return denseNames.loadMlp(layer, hidden, config.intermediateSize(), layout.mlpBias, activation);
        });
        return options.build();
    }

    static UnsupportedArchitectureException refused(ModelConfig config, String why) {
        return new UnsupportedArchitectureException("model architecture " + config.architectures() + " of " + config.source()
                + " has no native class, and the generic decoder cannot load it: " + why);
    }

    /** Where the decoder's parts sit, read from layer 0's tensor names and checked against every tensor. */
    private record Layout(List<String> qkv, String output, boolean qkvBias, boolean outputBias, boolean qkNorm,
                          List<String> gateUp, String up, String down, boolean mlpBias, boolean layerNorms, Experts experts,
                          boolean[] sparse) {

        /**
         * The mixture of the sparse layers ({@code sparse[i]}; the others hold the dense MLP): under
         * {@code scope}, a router {@code gate}, {@code count} SwiGLU experts of {@code intermediate}
         * named {@code names}, and where {@code sharedIntermediate} is positive a shared expert scaled
         * by {@code sigmoid(shared_expert_gate · x)} (Qwen2-MoE's; its tensors may be present with no
         * rows, as Transformers saves a shared expert of size 0).
         */
        record Experts(String scope, MixtureOfExperts.ExpertNames names, int count, int topK, boolean renormalize,
                       int intermediate, boolean sharedTensors, int sharedIntermediate) {
        }

        static Layout of(Checkpoint checkpoint, ModelConfig config) {
            Set<String> names = checkpoint.names();
            java.util.Map<Integer, Set<String>> byLayer = new java.util.TreeMap<>();
            for (String name : names) {
                Matcher m = LAYER.matcher(name);
                if (m.matches() && m.group(1).length() < 10) {
                    byLayer.computeIfAbsent(Integer.parseInt(m.group(1)), k -> new TreeSet<>()).add(m.group(2));
                }
            }
            Set<String> layerZero = byLayer.getOrDefault(0, Set.of());
            if (layerZero.isEmpty()) {
                throw refused(config, "no tensors under model.layers.0. (the checkpoint starts " + first(names) + ")");
            }
            int layers = byLayer.isEmpty() ? 0 : ((java.util.TreeMap<Integer, Set<String>>) byLayer).lastKey() + 1;
            if (config.numLayers() != layers) {
                throw refused(config, "num_hidden_layers is " + config.numLayers() + " but the checkpoint's layers run to "
                        + "model.layers." + (layers - 1));
            }
            List<String> qkv = firstPresent(layerZero, config, "self_attn.", ".weight",
                    List.of(List.of("q_proj", "k_proj", "v_proj"), List.of("qkv_proj"), List.of("W_pack")));
            String output = firstPresent(layerZero, config, "self_attn.", ".weight", List.of(List.of("o_proj"), List.of("dense"),
                    List.of("out_proj"))).getFirst();
            // Each layer's feed-forward block: a mixture of experts where it has a router and experts, else the dense MLP.
            boolean[] sparse = new boolean[layers];
            int firstSparse = -1, firstDense = -1;
            for (int i = 0; i < layers; i++) {
                sparse[i] = expertScope(byLayer.getOrDefault(i, Set.of())) != null;
                if (sparse[i] && firstSparse < 0) firstSparse = i;
                if (!sparse[i] && firstDense < 0) firstDense = i;
            }
            Experts experts = firstSparse < 0 ? null : experts(byLayer.get(firstSparse), firstSparse, checkpoint, config);
            Set<String> dense = firstDense < 0 ? Set.of() : byLayer.get(firstDense);
            List<String> gateUp = firstDense < 0 ? List.of() : optionalFirstPresent(dense, "mlp.", ".weight",
                    List.of(List.of("gate_proj", "up_proj"), List.of("gate_up_proj")));
            String down = firstDense < 0 ? null : firstPresent(dense, config, "mlp.", ".weight",
                    List.of(List.of("down_proj"), List.of("c_proj"), List.of("fc2"))).getFirst();
            String up = firstDense < 0 || !gateUp.isEmpty() ? null : firstPresent(dense, config, "mlp.", ".weight",
                    List.of(List.of("up_proj"), List.of("c_fc"), List.of("fc1"))).getFirst();
            for (String norm : List.of("input_layernorm.weight", "post_attention_layernorm.weight")) {
                if (!layerZero.contains(norm)) {
                    throw refused(config, "model.layers.0 has no " + norm + " (a norm before attention and one before the "
                            + "MLP are what the generic decoder builds)");
                }
            }
            boolean qkvBias = allOrNone(layerZero, config, "self_attn.", qkv);
            boolean outputBias = layerZero.contains("self_attn." + output + ".bias");
            List<String> mlpParts = new ArrayList<>();
            if (firstDense >= 0) {
                mlpParts.addAll(gateUp.isEmpty() ? List.of(up) : gateUp);
                mlpParts.add(down);
            }
            boolean mlpBias = firstDense >= 0 && allOrNone(dense, config, "mlp.", mlpParts);
            if (mlpBias && gateUp.size() == 1) throw refused(config, "a fused gate_up_proj with a bias");
            boolean layerNorms = layerZero.contains("input_layernorm.bias");
            boolean qkNorm = layerZero.contains("self_attn.q_norm.weight") && layerZero.contains("self_attn.k_norm.weight");
            Layout layout = new Layout(qkv, output, qkvBias, outputBias, qkNorm, gateUp, up, down, mlpBias, layerNorms, experts,
                    sparse);
            layout.checkEveryTensorIsPlaced(names, config);
            return layout;
        }

        /** Where a layer's mixture of experts sits ({@code block_sparse_moe} or {@code mlp}), or null for a dense MLP. */
        private static String expertScope(Set<String> layer) {
            if (layer.contains("block_sparse_moe.gate.weight")) return "block_sparse_moe";
            return layer.contains("mlp.gate.weight") && layer.stream().anyMatch(n -> n.startsWith("mlp.experts.0.")) ? "mlp" : null;
        }

        /** The names layer {@code layer} holds under this layout, relative to {@code model.layers.N.}. */
        Set<String> layerTensors(int layer) {
            Set<String> expected = new LinkedHashSet<>();
            for (String name : qkv) {
                expected.add("self_attn." + name + ".weight");
                if (qkvBias) expected.add("self_attn." + name + ".bias");
            }
            expected.add("self_attn." + output + ".weight");
            if (outputBias) expected.add("self_attn." + output + ".bias");
            if (qkNorm) expected.addAll(List.of("self_attn.q_norm.weight", "self_attn.k_norm.weight"));
            if (sparse[layer]) {
                String scope = experts.scope() + ".";
                expected.add(scope + "gate.weight");
                for (int e = 0; e < experts.count(); e++) {
                    for (String name : List.of(experts.names().gate(), experts.names().up(), experts.names().down())) {
                        expected.add(scope + "experts." + e + "." + name + ".weight");
                    }
                }
                if (experts.sharedTensors()) {
                    for (String name : List.of("gate_proj", "up_proj", "down_proj")) expected.add(scope + "shared_expert." + name + ".weight");
                    expected.add(scope + "shared_expert_gate.weight");
                }
            } else {
                List<String> mlp = new ArrayList<>(gateUp.isEmpty() ? List.of(up) : gateUp);
                mlp.add(down);
                for (String name : mlp) {
                    expected.add("mlp." + name + ".weight");
                    if (mlpBias) expected.add("mlp." + name + ".bias");
                }
            }
            for (String norm : List.of("input_layernorm", "post_attention_layernorm")) {
                expected.add(norm + ".weight");
                if (layerNorms) expected.add(norm + ".bias");
            }
            return expected;
        }

        private void checkEveryTensorIsPlaced(Set<String> names, ModelConfig config) {
            Set<String> expected = new TreeSet<>();
            for (int i = 0; i < config.numLayers(); i++) {
                for (String name : layerTensors(i)) expected.add("model.layers." + i + "." + name);
            }
            expected.add("model.embed_tokens.weight");
            expected.add("model.norm.weight");
            if (layerNorms) expected.add("model.norm.bias");
            List<String> missing = expected.stream().filter(name -> !names.contains(name)).toList();
            if (!missing.isEmpty()) {
                throw refused(config, "the checkpoint lacks " + listed(missing) + ", which its layer 0 or its "
                        + "num_hidden_layers (" + config.numLayers() + ") implies");
            }
            expected.add("lm_head.weight");
            List<String> unplaced = names.stream().filter(name -> !expected.contains(name))
                    .filter(name -> !name.endsWith("rotary_emb.inv_freq")).sorted().toList();
            if (!unplaced.isEmpty()) {
                throw refused(config, "no place for the tensors " + listed(unplaced)
                        + " (a part the generic decoder does not know, which it will not leave out)");
            }
        }

        /**
         * The mixture of experts of sparse layer {@code index}, whose {@code block_sparse_moe} or {@code mlp}
         * holds a router {@code gate} and {@code experts.0}. Mixtral's expert names (w1, w3, w2) mean
         * its routing (top k renormalized); others must state {@code norm_topk_prob}.
         */
        private static Experts experts(Set<String> layer, int index, Checkpoint checkpoint, ModelConfig config) {
            String scope = expertScope(layer);
            MixtureOfExperts.ExpertNames expertNames = layer.contains(scope + ".experts.0.w1.weight") ? MixtureOfExperts.ExpertNames.MIXTRAL
                    : layer.contains(scope + ".experts.0.gate_proj.weight") ? MixtureOfExperts.ExpertNames.LLAMA : null;
            if (expertNames == null) {
                throw refused(config, "experts under " + scope + ".experts.0 named neither w1/w2/w3 nor gate_proj/up_proj/down_proj");
            }
            int count = (int) layer.stream().filter(n -> n.startsWith(scope + ".experts.") && n.endsWith("." + expertNames.gate() + ".weight"))
                    .count();
            int stated = config.intOr(-1, "num_local_experts", "num_experts");
            int topK = config.intOr(-1, "num_experts_per_tok");
            if (stated != count || topK < 1 || topK > count) {
                throw refused(config, "layer " + index + " holds " + count + " experts; num_local_experts/num_experts is " + stated
                        + " and num_experts_per_tok " + topK);
            }
            boolean mixtral = expertNames == MixtureOfExperts.ExpertNames.MIXTRAL;
            if (!mixtral && !config.raw().has("norm_topk_prob")) {
                throw refused(config, "experts without Mixtral's names and no norm_topk_prob: whether the top "
                        + topK + " weights are renormalized is not stated");
            }
            if (!Activation.fromConfig(config.hiddenAct()).equals(Activation.SILU)) {
                throw refused(config, "experts with hidden_act '" + config.hiddenAct() + "' (the generic decoder's experts are SwiGLU)");
            }
            String first = "model.layers." + index + "." + scope + ".experts.0." + expertNames.gate() + ".weight";
            int intermediate = (int) checkpoint.get(first).shape()[0];
            boolean shared = layer.contains(scope + ".shared_expert.gate_proj.weight");
            int sharedIntermediate = shared
                    ? (int) checkpoint.get("model.layers." + index + "." + scope + ".shared_expert.gate_proj.weight").shape()[0] : 0;
            return new Experts(scope, expertNames, count, topK, mixtral || config.bool("norm_topk_prob", false), intermediate,
                    shared, sharedIntermediate);
        }

        /** The first group of names all present under {@code scope}; refused naming the groups where none is. */
        private static List<String> firstPresent(Set<String> layer, ModelConfig config, String scope, String suffix,
                                                 List<List<String>> groups) {
            List<String> found = optionalFirstPresent(layer, scope, suffix, groups);
            if (found.isEmpty()) {
                throw refused(config, "none of " + groups.stream()
                        .map(g -> String.join(" + ", g.stream().map(n -> scope + n + suffix).toList())).toList()
                        + " under model.layers.0 (it holds " + listed(new ArrayList<>(layer)) + ")");
            }
            return found;
        }

        private static List<String> optionalFirstPresent(Set<String> layer, String scope, String suffix, List<List<String>> groups) {
            for (List<String> group : groups) {
                if (group.stream().allMatch(name -> layer.contains(scope + name + suffix))) return group;
            }
            return List.of();
        }

        private static boolean allOrNone(Set<String> layer, ModelConfig config, String scope, List<String> parts) {
            long withBias = parts.stream().filter(name -> layer.contains(scope + name + ".bias")).count();
            if (withBias != 0 && withBias != parts.size()) {
                throw refused(config, "biases on some of " + parts.stream().map(n -> scope + n).toList() + " but not all");
            }
            return withBias == parts.size();
        }

        private static String listed(List<String> names) {
            return names.size() <= 6 ? String.join(", ", names)
                    : String.join(", ", names.subList(0, 6)) + " and " + (names.size() - 6) + " more";
        }

        private static String first(Set<String> names) {
            return listed(names.stream().sorted().limit(6).toList());
        }
    }
}
