package dev.jvllm.models;

import com.fasterxml.jackson.databind.JsonNode;
import dev.jvllm.config.ModelConfig;
import dev.jvllm.models.layers.DecoderOptions;
import dev.jvllm.models.layers.DecoderOptions.Feature;
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
 * {@code model.embed_tokens}, {@code model.norm} and {@code lm_head} (or the tied embeddings).
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
            Map.entry("use_alibi", false), Map.entry("num_experts", "any"), Map.entry("num_local_experts", "any"),
            Map.entry("n_routed_experts", "any"), Map.entry("sliding_window_pattern", "any"),
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
        Layout layout = Layout.of(context.checkpoint().names(), config);
        DecoderOptions.Builder options = DecoderOptions.builder(config)
                .names(WeightNames.LLAMA.attention("self_attn", layout.output, QkvLayout.BLOCKS, layout.qkv.toArray(String[]::new))
                        // A plain MLP is built by the feed-forward loader below; its up projection stands in the names.
                        .mlp("mlp", layout.down, layout.gateUp.isEmpty() ? new String[]{layout.up} : layout.gateUp.toArray(String[]::new)))
                .attentionBiases(layout.qkvBias, layout.outputBias)
                .mlpBias(layout.mlpBias)
                .slidingWindows(SlidingWindows.statedPerLayer(config));
        if (layout.qkNorm) options.with(Feature.QK_NORM);
        if (layout.layerNorms) options.with(Feature.LAYER_NORMS);
        if (layout.gateUp.isEmpty()) {
            Activation activation = Activation.fromConfig(config.hiddenAct());
            options.feedForward((model, layer, index) -> Mlp.load(layer.child("mlp"), layout.up, layout.down,
                    config.hiddenSize(), config.intermediateSize(), activation, layout.mlpBias));
        }
        return options.build();
    }

    static UnsupportedArchitectureException refused(ModelConfig config, String why) {
        return new UnsupportedArchitectureException("model architecture " + config.architectures() + " of " + config.source()
                + " has no native class, and the generic decoder cannot load it: " + why);
    }

    /** Where the decoder's parts sit, read from layer 0's tensor names and checked against every tensor. */
    private record Layout(List<String> qkv, String output, boolean qkvBias, boolean outputBias, boolean qkNorm,
                          List<String> gateUp, String up, String down, boolean mlpBias, boolean layerNorms) {

        static Layout of(Set<String> names, ModelConfig config) {
            Set<String> layerZero = new TreeSet<>();
            for (String name : names) {
                Matcher m = LAYER.matcher(name);
                if (m.matches() && m.group(1).equals("0")) layerZero.add(m.group(2));
            }
            if (layerZero.isEmpty()) {
                throw refused(config, "no tensors under model.layers.0. (the checkpoint starts " + first(names) + ")");
            }
            List<String> qkv = firstPresent(layerZero, config, "self_attn.", ".weight",
                    List.of(List.of("q_proj", "k_proj", "v_proj"), List.of("qkv_proj"), List.of("W_pack")));
            String output = firstPresent(layerZero, config, "self_attn.", ".weight", List.of(List.of("o_proj"), List.of("dense"),
                    List.of("out_proj"))).getFirst();
            List<String> gateUp = optionalFirstPresent(layerZero, "mlp.", ".weight",
                    List.of(List.of("gate_proj", "up_proj"), List.of("gate_up_proj")));
            String down = firstPresent(layerZero, config, "mlp.", ".weight",
                    List.of(List.of("down_proj"), List.of("c_proj"), List.of("fc2"))).getFirst();
            String up = gateUp.isEmpty() ? firstPresent(layerZero, config, "mlp.", ".weight",
                    List.of(List.of("up_proj"), List.of("c_fc"), List.of("fc1"))).getFirst() : null;
            for (String norm : List.of("input_layernorm.weight", "post_attention_layernorm.weight")) {
                if (!layerZero.contains(norm)) {
                    throw refused(config, "model.layers.0 has no " + norm + " (a norm before attention and one before the "
                            + "MLP are what the generic decoder builds)");
                }
            }
            boolean qkvBias = allOrNone(layerZero, config, "self_attn.", qkv);
            boolean outputBias = layerZero.contains("self_attn." + output + ".bias");
            List<String> mlpParts = new ArrayList<>(gateUp.isEmpty() ? List.of(up) : gateUp);
            mlpParts.add(down);
            boolean mlpBias = allOrNone(layerZero, config, "mlp.", mlpParts);
            if (mlpBias && gateUp.size() == 1) throw refused(config, "a fused gate_up_proj with a bias");
            boolean layerNorms = layerZero.contains("input_layernorm.bias");
            boolean qkNorm = layerZero.contains("self_attn.q_norm.weight") && layerZero.contains("self_attn.k_norm.weight");
            Layout layout = new Layout(qkv, output, qkvBias, outputBias, qkNorm, gateUp, up, down, mlpBias, layerNorms);
            layout.checkEveryTensorIsPlaced(names, config);
            return layout;
        }

        /** The names each layer holds under this layout, relative to {@code model.layers.N.}. */
        Set<String> layerTensors() {
            Set<String> expected = new LinkedHashSet<>();
            for (String name : qkv) {
                expected.add("self_attn." + name + ".weight");
                if (qkvBias) expected.add("self_attn." + name + ".bias");
            }
            expected.add("self_attn." + output + ".weight");
            if (outputBias) expected.add("self_attn." + output + ".bias");
            if (qkNorm) expected.addAll(List.of("self_attn.q_norm.weight", "self_attn.k_norm.weight"));
            List<String> mlp = new ArrayList<>(gateUp.isEmpty() ? List.of(up) : gateUp);
            mlp.add(down);
            for (String name : mlp) {
                expected.add("mlp." + name + ".weight");
                if (mlpBias) expected.add("mlp." + name + ".bias");
            }
            for (String norm : List.of("input_layernorm", "post_attention_layernorm")) {
                expected.add(norm + ".weight");
                if (layerNorms) expected.add(norm + ".bias");
            }
            return expected;
        }

        private void checkEveryTensorIsPlaced(Set<String> names, ModelConfig config) {
            int highest = -1;
            for (String name : names) {
                Matcher m = LAYER.matcher(name);
                if (m.matches() && m.group(1).length() < 10) highest = Math.max(highest, Integer.parseInt(m.group(1)));
            }
            if (config.numLayers() != highest + 1) {
                throw refused(config, "num_hidden_layers is " + config.numLayers() + " but the checkpoint's layers run to "
                        + "model.layers." + highest);
            }
            Set<String> expected = new TreeSet<>();
            for (int i = 0; i < config.numLayers(); i++) {
                for (String name : layerTensors()) expected.add("model.layers." + i + "." + name);
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
