package dev.jvllm.models;

import dev.jvllm.models.vision.Qwen2VLModel;
import dev.jvllm.spi.CausalLM;
import dev.jvllm.spi.ModelArchitecture;
import dev.jvllm.spi.ModelContext;

import java.util.List;

/**
 * Qwen2.5-VL ({@code Qwen/Qwen2.5-VL-3B-Instruct}, {@code -7B-}, {@code -72B-}): {@link Qwen2VLModel}
 * with its RMSNorm tower of gated MLPs attending within windows in most layers.
 */
public final class Qwen25VLForConditionalGeneration implements ModelArchitecture {

    @Override
    public List<String> architectureNames() {
        return List.of("Qwen2_5_VLForConditionalGeneration");
    }

    @Override
    public List<String> modelTypes() {
        return List.of("qwen2_5_vl");
    }

    @Override
    public CausalLM load(ModelContext context) {
        return new Qwen2VLModel(context);
    }
}
