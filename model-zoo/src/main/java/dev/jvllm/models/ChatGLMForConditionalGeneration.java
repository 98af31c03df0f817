package dev.jvllm.models;

import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.jvllm.config.ConfigException;
import dev.jvllm.config.ModelConfig;
import dev.jvllm.models.layers.DecoderOptions;
import dev.jvllm.models.layers.DecoderOptions.Positions;
import dev.jvllm.models.layers.PreNormArchitecture;
import dev.jvllm.models.layers.WeightNames;
import dev.jvllm.models.layers.WeightNames.QkvLayout;

import java.util.List;

/**
 * ChatGLM2, ChatGLM3 and GLM-4's Hub code: Llama-shaped layers under Megatron-style names, q, k and
 * v packed as [q; k; v] with biases ({@code add_qkv_bias}) over {@code multi_query_group_num}
 * key/value heads, gate and up packed in {@code dense_h_to_4h}, and rotary on the first half of each
 * head with adjacent features paired ({@code original_rope}), its base 10000 × {@code rope_ratio}.
 * The first ChatGLM-6B (2D positions, GLM blocks) is a different model and is refused.
 */
public final class ChatGLMForConditionalGeneration extends PreNormArchitecture {

    static final WeightNames NAMES = WeightNames.LLAMA
            .model("transformer.embedding.word_embeddings", "transformer.encoder.layers",
                    "transformer.encoder.final_layernorm", "transformer.output_layer")
            .attention("self_attention", "dense", QkvLayout.BLOCKS, "query_key_value")
            .mlp("mlp", "dense_4h_to_h", "dense_h_to_4h");

    public ChatGLMForConditionalGeneration() {
        super(List.of("ChatGLMModel", "ChatGLMForConditionalGeneration"), ChatGLMForConditionalGeneration::llamaFields,
                config -> DecoderOptions.builder(config)
                        .names(NAMES)
                        .attentionBiases(config.bool("add_qkv_bias", false), false)
                        .positions(config.bool("original_rope", true) ? Positions.ROTARY_INTERLEAVED : Positions.ROTARY)
                        .build());
    }

    /** ChatGLMConfig's fields (and its class defaults) under Llama's names. */
    static ModelConfig llamaFields(ModelConfig config) {
        refuseIf(config, config.bool("position_encoding_2d", false), "position_encoding_2d (the first ChatGLM-6B)");
        refuseIf(config, !config.bool("rmsnorm", true), "LayerNorm (rmsnorm false)");
        refuseIf(config, config.bool("apply_residual_connection_post_layernorm", false),
                "apply_residual_connection_post_layernorm");
        refuseIf(config, !config.bool("post_layer_norm", true), "no final norm (post_layer_norm false)");
        refuseIf(config, config.bool("add_bias_linear", false), "add_bias_linear");
        int hidden = config.intOr(4096, "hidden_size");
        int heads = config.intOr(32, "num_attention_heads");
        ObjectNode fields = config.raw().deepCopy();
        fields.put("hidden_size", hidden);
        fields.put("num_attention_heads", heads);
        fields.put("num_hidden_layers", config.intOr(28, "num_layers"));
        fields.put("vocab_size", config.intOr(65024, "padded_vocab_size"));
        fields.put("intermediate_size", config.intOr(13696, "ffn_hidden_size"));
        fields.put("head_dim", config.intOr(hidden / heads, "kv_channels"));
        fields.put("num_key_value_heads",
                config.bool("multi_query_attention", false) ? config.intOr(1, "multi_query_group_num") : heads);
        fields.put("rms_norm_eps", config.doubleOr(1e-5, "layernorm_epsilon"));
        fields.put("max_position_embeddings", config.intOr(2048, "seq_length"));
        fields.putObject("rope_parameters")
                .put("rope_type", "default")
                .put("rope_theta", 10000 * config.doubleOr(1, "rope_ratio"))
                .put("partial_rotary_factor", 0.5);
        return ModelConfig.parse(fields.toString());
    }

    private static void refuseIf(ModelConfig config, boolean unsupported, String what) {
        if (unsupported) {
            throw new ConfigException(config.source() + ": ChatGLM with " + what + " is not supported");
        }
    }
}
