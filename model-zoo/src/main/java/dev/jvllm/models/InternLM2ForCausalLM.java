package dev.jvllm.models;

import dev.jvllm.models.layers.DecoderOptions;
import dev.jvllm.models.layers.PreNormArchitecture;
import dev.jvllm.models.layers.WeightNames;
import dev.jvllm.models.layers.WeightNames.QkvLayout;

import java.util.List;

/**
 * InternLM2 and InternLM2.5: Llama under other names, with q, k and v packed per key/value head in
 * {@code wqkv} (each head's queries, then its key and value) and biases on wqkv and wo when
 * {@code bias} is set.
 */
public final class InternLM2ForCausalLM extends PreNormArchitecture {

    static final WeightNames NAMES = WeightNames.LLAMA
            .model("model.tok_embeddings", "model.layers", "model.norm", "output")
            .norms("attention_norm", "ffn_norm")
            .attention("attention", "wo", QkvLayout.PER_KV_HEAD, "wqkv")
            .mlp("feed_forward", "w2", "w1", "w3");

    public InternLM2ForCausalLM() {
        super(List.of("InternLM2ForCausalLM"), config -> {
            boolean bias = config.bool("bias", true);
            return DecoderOptions.builder(config).names(NAMES).attentionBiases(bias, bias).build();
        });
    }
}
