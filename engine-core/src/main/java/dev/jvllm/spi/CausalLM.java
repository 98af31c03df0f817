package dev.jvllm.spi;

import dev.jvllm.engine.ForwardBatch;

/** A loaded decoder model: one forward over a flattened batch yields logits for chosen tokens. */
public interface CausalLM extends AutoCloseable {

    /** The cache shape this model needs for {@code numBlocks} blocks of {@code blockSize} tokens. */
    KvCacheSpec kvCacheSpec(int numBlocks, int blockSize);

    int vocabSize();

    /**
     * Runs the batch: writes its keys and values into the cache and returns the logits of
     * {@code batch.logitRows()} as a [logitRows, vocab] tensor of the backend (valid until the next call).
     */
    Tensor forward(ForwardBatch batch, KvCache cache);

    @Override
    default void close() {
    }
}
