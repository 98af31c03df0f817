package dev.jvllm.models;

import dev.jvllm.models.vision.InternVLModel;
import dev.jvllm.spi.CausalLM;
import dev.jvllm.spi.ModelArchitecture;
import dev.jvllm.spi.ModelContext;

import java.util.List;

/**
 * InternVL 1.5 / 2 / 2.5 as OpenGVLab publishes them ({@code OpenGVLab/InternVL2-8B}, remote code
 * jvllm never runs): {@link InternVLModel} with InternVL's own names ({@code vision_model}, a fused
 * {@code qkv}, {@code mlp1}), its config's {@code llm_config} (InternLM2, Qwen2, Phi-3 or Llama) and
 * the tiling fields of config.json; the placeholder is the tokenizer's {@code <IMG_CONTEXT>}.
 */
public final class InternVLChatModel implements ModelArchitecture {

    @Override
    public List<String> architectureNames() {
        return List.of("InternVLChatModel");
    }

    @Override
    public CausalLM load(ModelContext context) {
        return new InternVLModel(context, InternVLModel.Format.INTERNVL);
    }
}
