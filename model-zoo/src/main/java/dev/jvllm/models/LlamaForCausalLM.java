package dev.jvllm.models;

import dev.jvllm.models.layers.DecoderOptions;
import dev.jvllm.models.layers.PreNormArchitecture;

import java.util.List;

/**
 * Llama 1/2/3/3.1 (and checkpoints that reuse its class: Yi, DeepSeek-LLM): pre-norm decoder
 * layers of rotary grouped-query attention and a SwiGLU MLP, RMSNorm everywhere. The shape every
 * {@link dev.jvllm.models.layers.PreNormDecoder} family starts from.
 */
public final class LlamaForCausalLM extends PreNormArchitecture {

    public LlamaForCausalLM() {
        super(List.of("LlamaForCausalLM", "LLaMAForCausalLM"), config -> DecoderOptions.builder(config).build());
    }

    @Override
    public List<String> modelTypes() {
        return List.of("llama");
    }
}
