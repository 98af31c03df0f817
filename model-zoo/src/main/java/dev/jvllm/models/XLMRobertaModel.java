package dev.jvllm.models;

import dev.jvllm.spi.CausalLM;
import dev.jvllm.spi.ModelArchitecture;
import dev.jvllm.spi.ModelContext;
import dev.jvllm.spi.PoolingModel;

import java.util.List;

/**
 * XLM-RoBERTa and RoBERTa (arXiv:1911.02116, 1907.11692) as embedders: bge-m3, multilingual-e5.
 * BERT's encoder; what differs is that position ids start after the padding index
 * ({@code padding_idx + 1}, so 2 with the usual pad id 1) and weights may sit under {@code roberta.}.
 */
public final class XLMRobertaModel {

    private XLMRobertaModel() {
    }

    /** The registry entry. */
    public static final class Architecture implements ModelArchitecture {
        @Override
        public List<String> architectureNames() {
            return List.of("XLMRobertaModel", "XLMRobertaForMaskedLM", "RobertaModel", "RobertaForMaskedLM");
        }

        @Override
        public List<String> modelTypes() {
            return List.of("xlm-roberta", "roberta");
        }

        @Override
        public boolean generates() {
            return false;
        }

        @Override
        public CausalLM load(ModelContext context) {
            throw BertModel.encoderOnly(architectureNames().getFirst());
        }

        @Override
        public PoolingModel loadPooling(ModelContext context) {
            int paddingIndex = context.config().intOr(1, "pad_token_id");
            return new BertModel(context, new BertModel.Variant(List.of("", "roberta."), paddingIndex + 1));
        }
    }
}
