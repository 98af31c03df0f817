package dev.jvllm.models;

import dev.jvllm.models.vision.InternVLModel;
import dev.jvllm.spi.CausalLM;
import dev.jvllm.spi.ModelArchitecture;
import dev.jvllm.spi.ModelContext;

import java.util.List;

/**
 * InternVL 2.5 / 3 in Transformers' format ({@code OpenGVLab/InternVL3-1B-hf} and the other
 * {@code -hf} checkpoints): {@link InternVLModel} with Transformers' names, its config's
 * {@code text_config} and the tiling of {@code preprocessor_config.json}.
 */
public final class InternVLForConditionalGeneration implements ModelArchitecture {

    @Override
    public List<String> architectureNames() {
        return List.of("InternVLForConditionalGeneration");
    }

    @Override
    public List<String> modelTypes() {
        return List.of("internvl");
    }

    @Override
    public CausalLM load(ModelContext context) {
        return new InternVLModel(context, InternVLModel.Format.TRANSFORMERS);
    }
}
