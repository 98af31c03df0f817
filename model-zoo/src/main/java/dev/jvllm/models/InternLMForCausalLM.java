package dev.jvllm.models;

import dev.jvllm.models.layers.DecoderOptions;
import dev.jvllm.models.layers.PreNormArchitecture;

import java.util.List;

/**
 * InternLM (the first generation): Llama with biases on the q, k, v and o projections when
 * {@code bias} is set (its class default), none in the MLP.
 */
public final class InternLMForCausalLM extends PreNormArchitecture {

    public InternLMForCausalLM() {
        super(List.of("InternLMForCausalLM"), config -> {
            boolean bias = config.bool("bias", true);
            return DecoderOptions.builder(config).attentionBiases(bias, bias).build();
        });
    }
}
