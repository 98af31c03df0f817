package dev.jvllm.models;

import dev.jvllm.JvllmException;
import dev.jvllm.engine.ForwardBatch;
import dev.jvllm.models.layers.PreNormArchitecture;
import dev.jvllm.models.layers.WeightScope;
import dev.jvllm.pooling.ClassifierHead;
import dev.jvllm.pooling.PoolingType;
import dev.jvllm.spi.CausalLM;
import dev.jvllm.spi.KvCache;
import dev.jvllm.spi.KvCacheSpec;
import dev.jvllm.spi.ModelArchitecture;
import dev.jvllm.spi.ModelContext;
import dev.jvllm.spi.PoolingModel;
import dev.jvllm.spi.Tensor;

import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * Decoders' sequence classifiers ({@code LlamaForSequenceClassification}, Mistral's, Qwen2's and
 * Qwen3's: classifiers and reward models): the causal family's decoder without its language-model
 * head, and a {@code score} layer (no bias) over the final-normed state of the input's last token that
 * is not the pad token (as Transformers pools: a template ending in a token that is also the pad
 * id is pooled before it).
 */
public final class DecoderSequenceClassification implements ModelArchitecture {

    /** Each classifier's name and the causal family whose decoder it is. */
    private static final Map<String, PreNormArchitecture> FAMILIES = Map.of(
            "LlamaForSequenceClassification", new LlamaForCausalLM(),
            "MistralForSequenceClassification", new MistralForCausalLM(),
            "Qwen2ForSequenceClassification", new Qwen2ForCausalLM(),
            "Qwen3ForSequenceClassification", new Qwen3ForCausalLM());

    @Override
    public List<String> architectureNames() {
        return FAMILIES.keySet().stream().sorted().toList();
    }

    @Override
    public boolean generates() {
        return false;
    }

    @Override
    public boolean classifies() {
        return true;
    }

    @Override
    public CausalLM load(ModelContext context) {
        throw new JvllmException(context.config().architectures() + " checkpoints have a classifier's head, not a language model's: "
                + "build the LLM with task(Task.CLASSIFY)");
    }

    @Override
    public PoolingModel loadPooling(ModelContext context) {
        PreNormArchitecture family = context.config().architectures().stream().map(FAMILIES::get)
                .filter(java.util.Objects::nonNull).findFirst().orElseThrow();
        PoolingModel decoder = family.loadPooling(context);
        try {
            int hidden = decoder.hiddenSize();
            List<String> labels = BertModel.labels(context.config());
            float[] score = WeightScope.root(context.checkpoint(), context.backend()).floats("score.weight", labels.size(), hidden);
            int pad = context.config().intOr(-1, "pad_token_id");
            return new Classified(decoder, new ClassifierHead(hidden, null, null, score, null, labels,
                    ClassifierHead.Reading.of(context.config().raw(), labels.size(), pad, context.config().source())));
        } catch (RuntimeException e) {
            decoder.close();
            throw e;
        }
    }

    /** A decoder's pooling model with the classifier over its last token. */
    private record Classified(PoolingModel decoder, ClassifierHead head) implements PoolingModel {
        @Override
        public int hiddenSize() {
            return decoder.hiddenSize();
        }

        @Override
        public int vocabSize() {
            return decoder.vocabSize();
        }

        @Override
        public int maxInputLength() {
            return decoder.maxInputLength();
        }

        @Override
        public PoolingType defaultPooling() {
            return PoolingType.LAST;
        }

        @Override
        public KvCacheSpec kvCacheSpec(int numBlocks, int blockSize) {
            return decoder.kvCacheSpec(numBlocks, blockSize);
        }

        @Override
        public Tensor hiddenStates(ForwardBatch batch, KvCache cacheOrNull) {
            return decoder.hiddenStates(batch, cacheOrNull);
        }

        @Override
        public Optional<Tensor> pooledRowStates(ForwardBatch batch, KvCache cacheOrNull) {
            return decoder.pooledRowStates(batch, cacheOrNull);
        }

        @Override
        public Optional<ClassifierHead> classifier() {
            return Optional.of(head);
        }

        @Override
        public void close() {
            decoder.close();
        }
    }
}
