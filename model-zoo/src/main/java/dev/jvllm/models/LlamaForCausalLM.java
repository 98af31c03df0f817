package dev.jvllm.models;

import dev.jvllm.config.ModelConfig;
import dev.jvllm.models.layers.DecoderOptions;
import dev.jvllm.models.layers.PreNormArchitecture;

/**
 * Llama 1/2/3/3.1 (and checkpoints that reuse its class: Yi, DeepSeek-LLM): pre-norm decoder
 * layers of rotary grouped-query attention and a SwiGLU MLP, RMSNorm everywhere. The shape every
 * {@link dev.jvllm.models.layers.PreNormDecoder} family starts from.
 */
public final class LlamaForCausalLM {

    private LlamaForCausalLM() {
    }

    /** The registry entry. */
    public static final class Architecture extends PreNormArchitecture {
        public Architecture() {
            super("LlamaForCausalLM", "LLaMAForCausalLM");
        }

        @Override
        protected DecoderOptions options(ModelConfig config) {
            return DecoderOptions.builder(config).build();
        }
    }
}
