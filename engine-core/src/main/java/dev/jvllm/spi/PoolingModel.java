package dev.jvllm.spi;

import dev.jvllm.engine.ForwardBatch;
import dev.jvllm.pooling.PoolingType;

import java.util.Optional;

/**
 * A loaded model used for its hidden states rather than its next-token logits: an encoder (BERT,
 * XLM-RoBERTa) or a decoder without its language-model head (e5-mistral). One forward over a
 * flattened batch of whole inputs returns the final hidden state of every token; pooling them
 * into one vector per input is the engine's work ({@link dev.jvllm.pooling.Pooler}).
 */
public interface PoolingModel extends AutoCloseable {

    /** Width of a hidden state. */
    int hiddenSize();

    /** Token ids run from 0 to this, exclusive. */
    int vocabSize();

    /** The longest input, in tokens, its position embeddings cover. */
    int maxInputLength();

    /** The pooling this architecture uses when the checkpoint has no sentence-transformers files. */
    PoolingType defaultPooling();

    /**
     * The cache a decoder needs for {@code numBlocks} blocks of {@code blockSize} tokens; null for
     * encoders, whose bidirectional attention runs on the step's own keys and values.
     */
    default KvCacheSpec kvCacheSpec(int numBlocks, int blockSize) {
        return null;
    }

    /**
     * Runs the batch (every sequence complete, positions from 0) and returns the final hidden
     * state of every token as a [tokens, hiddenSize] tensor of the backend, valid until the next call.
     *
     * @param cacheOrNull the cache of {@link #kvCacheSpec}, null for encoders
     */
    Tensor hiddenStates(ForwardBatch batch, KvCache cacheOrNull);

    /**
     * Runs the batch as {@link #hiddenStates} does but returns only the final hidden states of the
     * tokens {@code batch.logitRows()}, [rows, hiddenSize] in their order: all that pooling by one
     * token per input (CLS, LAST) reads. Empty where the model has no shorter way than computing
     * every token's state; the caller then picks the rows from {@link #hiddenStates}.
     */
    default Optional<Tensor> pooledRowStates(ForwardBatch batch, KvCache cacheOrNull) {
        return Optional.empty();
    }

    /**
     * {@link #hiddenStates} where each token has a type (segment id: BERT's 0 for a pair's first text,
     * 1 for its second; null: all 0). A model without token-type embeddings (RoBERTa's one type, a
     * decoder) reads every token as type 0, whatever its tokenizer wrote, as Transformers' models of
     * those families take no types.
     */
    default Tensor hiddenStates(ForwardBatch batch, KvCache cacheOrNull, int[] tokenTypes) {
        return hiddenStates(batch, cacheOrNull);
    }

    /** {@link #pooledRowStates} where each token has a type, as for {@link #hiddenStates(ForwardBatch, KvCache, int[])}. */
    default Optional<Tensor> pooledRowStates(ForwardBatch batch, KvCache cacheOrNull, int[] tokenTypes) {
        return pooledRowStates(batch, cacheOrNull);
    }

    /** The head of a sequence-classification checkpoint over the pooled state; empty for an embedder. */
    default Optional<dev.jvllm.pooling.ClassifierHead> classifier() {
        return Optional.empty();
    }

    @Override
    default void close() {
    }
}
