package dev.jvllm.models;

import dev.jvllm.config.ModelConfig;
import dev.jvllm.models.layers.WeightScope;
import dev.jvllm.spi.CausalLM;
import dev.jvllm.spi.ModelArchitecture;
import dev.jvllm.spi.ModelContext;

import java.util.List;
import java.util.Map;

/**
 * Gemma 3's multimodal checkpoints ({@code google/gemma-3-4b-it}, 12b, 27b) for text: the language
 * model of {@code text_config}, as {@link Gemma3ForCausalLM}, its weights under
 * {@code language_model.model} (saved by Transformers 4) or {@code model.language_model} (5), its
 * head tied to the embeddings. The SigLIP tower is not built, so a prompt with images is refused as
 * for any text model.
 */
public final class Gemma3ForConditionalGeneration implements ModelArchitecture {

    /**
     * What Transformers' Gemma3TextConfig takes when a field is left out, as the Hub's multimodal
     * configs do (their text_config names only what differs).
     */
    private static final Map<String, Object> TEXT_DEFAULTS = Map.ofEntries(
            Map.entry("model_type", "gemma3_text"), Map.entry("vocab_size", 262_208), Map.entry("hidden_size", 2304),
            Map.entry("intermediate_size", 9216), Map.entry("num_hidden_layers", 26), Map.entry("num_attention_heads", 8),
            Map.entry("num_key_value_heads", 4), Map.entry("head_dim", 256), Map.entry("hidden_activation", "gelu_pytorch_tanh"),
            Map.entry("max_position_embeddings", 131_072), Map.entry("rms_norm_eps", 1e-6), Map.entry("rope_theta", 1_000_000.0),
            Map.entry("query_pre_attn_scalar", 256), Map.entry("sliding_window", 4096), Map.entry("rope_local_base_freq", 10_000.0),
            Map.entry("sliding_window_pattern", 6), Map.entry("tie_word_embeddings", true));

    @Override
    public List<String> architectureNames() {
        return List.of("Gemma3ForConditionalGeneration");
    }

    @Override
    public List<String> modelTypes() {
        return List.of("gemma3");
    }

    /** Gemma3TextConfig's 131 072 where the Hub's text_config leaves it out (its language model's, not the 2 048 of a config without one). */
    @Override
    public int maxPositions(ModelConfig config) {
        return textConfig(config).maxPositionEmbeddings();
    }

    @Override
    public CausalLM load(ModelContext context) {
        ModelConfig text = textConfig(context.config());
        WeightScope root = WeightScope.root(context.checkpoint(), context.backend());
        String decoder = root.has("language_model.model.embed_tokens.weight") ? "language_model.model" : "model.language_model";
        String lmHead = root.has("language_model.lm_head.weight") ? "language_model.lm_head" : "lm_head";
        return new Gemma3ForCausalLM().loadLanguageModel(context, text, decoder, lmHead);
    }

    /** The checkpoint's {@code text_config}, Gemma3TextConfig's defaults filled in. */
    static ModelConfig textConfig(ModelConfig config) {
        return config.section("text_config").withDefaults(TEXT_DEFAULTS);
    }
}
