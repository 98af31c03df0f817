package dev.jvllm.models;

import dev.jvllm.JvllmException;
import dev.jvllm.engine.ForwardBatch;
import dev.jvllm.pooling.PoolingType;
import dev.jvllm.spi.CausalLM;
import dev.jvllm.spi.KvCache;
import dev.jvllm.spi.KvCacheSpec;
import dev.jvllm.spi.ModelArchitecture;
import dev.jvllm.spi.ModelContext;
import dev.jvllm.spi.PoolingModel;
import dev.jvllm.spi.Tensor;

import java.util.List;

/**
 * Decoder checkpoints saved without their language-model head and used as embedders
 * (intfloat/e5-mistral-7b-instruct is a {@code MistralModel}; gte-Qwen2 a {@code Qwen2Model}):
 * Llama's decoder with weights not under {@code model.}, causal attention over a cache, and the
 * last token's final-normed state as the embedding. Qwen2 differs only in q/k/v biases.
 */
public final class LlamaModel implements PoolingModel {

    /** The registry entry. */
    public static final class Architecture implements ModelArchitecture {
        @Override
        public List<String> architectureNames() {
            return List.of("LlamaModel", "MistralModel", "Qwen2Model");
        }

        @Override
        public boolean generates() {
            return false;
        }

        @Override
        public CausalLM load(ModelContext context) {
            throw new JvllmException(context.config().architectures()
                    + " checkpoints have no language-model head and cannot generate; build the LLM with task(Task.EMBED)");
        }

        @Override
        public PoolingModel loadPooling(ModelContext context) {
            boolean qwen2 = context.config().architectures().contains("Qwen2Model");
            return new LlamaModel(new LlamaForCausalLM(context, "", false, qwen2), context.maxModelLen());
        }
    }

    private final LlamaForCausalLM decoder;
    private final int maxInputLength;

    LlamaModel(LlamaForCausalLM decoder, int maxInputLength) {
        this.decoder = decoder;
        this.maxInputLength = maxInputLength;
    }

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
        return maxInputLength;
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
    public void close() {
        decoder.close();
    }
}
