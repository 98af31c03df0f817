package dev.jvllm.models;

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
    public static final class Architecture extends BertModel.EncoderArchitecture {
        @Override
        public List<String> architectureNames() {
            return List.of("XLMRobertaModel", "XLMRobertaForMaskedLM", "RobertaModel", "RobertaForMaskedLM");
        }

        @Override
        public List<String> modelTypes() {
            return List.of("xlm-roberta", "roberta");
        }

        @Override
        public PoolingModel loadPooling(ModelContext context) {
            return new BertModel(context, variant(context, List.of("", "roberta."), false));
        }
    }

    /** XLMRobertaForSequenceClassification and RobertaForSequenceClassification: bge-reranker-v2-m3 and other cross-encoders. */
    public static final class SequenceClassification extends BertModel.EncoderArchitecture {
        @Override
        public List<String> architectureNames() {
            return List.of("XLMRobertaForSequenceClassification", "RobertaForSequenceClassification");
        }

        @Override
        public boolean classifies() {
            return true;
        }

        @Override
        public PoolingModel loadPooling(ModelContext context) {
            return new BertModel(context, variant(context, List.of("roberta.", ""), true));
        }
    }

    /** RoBERTa's positions: from {@code padding_idx + 1}. */
    private static BertModel.Variant variant(ModelContext context, List<String> prefixes, boolean classifier) {
        return new BertModel.Variant(prefixes, context.config().intOr(1, "pad_token_id") + 1, classifier);
    }
}
