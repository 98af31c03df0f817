package dev.jvllm.models;

import dev.jvllm.JvllmException;
import dev.jvllm.models.layers.PreNormArchitecture;
import dev.jvllm.models.layers.PreNormDecoder;
import dev.jvllm.spi.CausalLM;
import dev.jvllm.spi.ModelArchitecture;
import dev.jvllm.spi.ModelContext;
import dev.jvllm.spi.PoolingModel;

import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * Decoder checkpoints saved without their language-model head and used as embedders
 * (intfloat/e5-mistral-7b-instruct is a {@code MistralModel}; gte-Qwen2 a {@code Qwen2Model}):
 * the {@link PreNormDecoder} of the matching causal family (Llama, Mistral's sliding window,
 * Qwen2's q/k/v biases) with weights not under {@code model.}, causal attention over a cache, and
 * the last token's final-normed state as the embedding.
 */
public final class LlamaModel implements ModelArchitecture {

    /** Each headless name and the causal family whose decoder it is. */
    private static final Map<String, PreNormArchitecture> FAMILIES = Map.of(
            "LlamaModel", new LlamaForCausalLM(),
            "MistralModel", new MistralForCausalLM(),
            "Qwen2Model", new Qwen2ForCausalLM());

    @Override
    public List<String> architectureNames() {
        return List.of("LlamaModel", "MistralModel", "Qwen2Model");
    }

    @Override
    public boolean generates() {
        return false;
    }

    @Override
    public CausalLM load(ModelContext context) {
        throw new JvllmException(context.config().architectures()
                + " checkpoints have no language-model head and cannot generate; build the LLM with task(Task.EMBED)");
    }

    @Override
    public PoolingModel loadPooling(ModelContext context) {
        PreNormArchitecture family = context.config().architectures().stream()
                .map(FAMILIES::get)
                .filter(Objects::nonNull)
                .findFirst()
                .orElse(FAMILIES.get("LlamaModel"));
        return new PreNormDecoder(context, family.optionsFor(context.config()), "", false);
    }
}
