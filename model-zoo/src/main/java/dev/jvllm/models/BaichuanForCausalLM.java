package dev.jvllm.models;

import dev.jvllm.config.ModelConfig;
import dev.jvllm.models.layers.DecoderOptions;
import dev.jvllm.models.layers.DecoderOptions.Positions;
import dev.jvllm.models.layers.PreNormArchitecture;
import dev.jvllm.models.layers.WeightNames;
import dev.jvllm.models.layers.WeightNames.QkvLayout;

import java.util.List;

/**
 * Baichuan and Baichuan 2: Llama without biases and with q, k and v packed as [q; k; v] in
 * {@code W_pack}. The 7B models are rotary, the 13B ones use ALiBi; Baichuan 2 scales each LM head
 * row to unit length (NormHead).
 */
public final class BaichuanForCausalLM extends PreNormArchitecture {

    /** Baichuan 2's vocabulary; Baichuan 1 has 64000 tokens. */
    static final int BAICHUAN2_VOCAB_SIZE = 125696;

    public BaichuanForCausalLM() {
        // "BaiChuanForCausalLM" is Baichuan-7B's spelling; the later models say "BaichuanForCausalLM".
        super(List.of("BaichuanForCausalLM", "BaiChuanForCausalLM"), config -> DecoderOptions.builder(config)
                .names(WeightNames.LLAMA.attention("self_attn", "o_proj", QkvLayout.BLOCKS, "W_pack"))
                .attentionBiases(false, false)
                .positions(positions(config))
                .unitLmHeadRows(normalizesLmHead(config))
                .build());
    }

    /**
     * No config field says which position scheme a Baichuan model uses. As vLLM decides: Baichuan-7B
     * (architecture "BaiChuanForCausalLM") and Baichuan2-7B (hidden size 4096) are rotary; the 13B
     * models (hidden size 5120) use ALiBi.
     */
    static Positions positions(ModelConfig config) {
        boolean rotary = config.architectures().contains("BaiChuanForCausalLM") || config.hiddenSize() == 4096;
        return rotary ? Positions.ROTARY : Positions.ALIBI;
    }

    /**
     * Baichuan 2's NormHead normalizes the LM head rows; Baichuan 1 uses them as they are. Its
     * configs do not say which they are, so, as vLLM does, a vocabulary of 125696 tokens means
     * Baichuan 2. A boolean {@code norm_head} in config.json, when present, decides instead.
     */
    static boolean normalizesLmHead(ModelConfig config) {
        return config.bool("norm_head", config.vocabSize() == BAICHUAN2_VOCAB_SIZE);
    }
}
