package dev.jvllm.models;

import dev.jvllm.models.vision.Qwen2VLModel;
import dev.jvllm.spi.CausalLM;
import dev.jvllm.spi.ModelArchitecture;
import dev.jvllm.spi.ModelContext;

import java.util.List;

/**
 * Qwen2-VL ({@code Qwen/Qwen2-VL-2B-Instruct}, {@code -7B-}, {@code -72B-}): {@link Qwen2VLModel}
 * with its LayerNorm tower attending over whole images.
 */
public final class Qwen2VLForConditionalGeneration implements ModelArchitecture {

    @Override
    public List<String> architectureNames() {
        return List.of("Qwen2VLForConditionalGeneration");
    }

    @Override
    public List<String> modelTypes() {
        return List.of("qwen2_vl");
    }

    @Override
    public CausalLM load(ModelContext context) {
        return new Qwen2VLModel(context);
    }
}
