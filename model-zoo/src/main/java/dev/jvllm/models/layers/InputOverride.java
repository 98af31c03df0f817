package dev.jvllm.models.layers;

import dev.jvllm.engine.ForwardBatch;
import dev.jvllm.spi.Backend;
import dev.jvllm.spi.Tensor;

/**
 * Rewrites some of a decoder's input vectors after the token embedding and before any scaling, as
 * Transformers' vision-language models put image features in place of the image placeholders'
 * embeddings ({@code inputs_embeds.masked_scatter}).
 */
@FunctionalInterface
public interface InputOverride {

    /** Overwrites rows of x ([tokens, hidden], the batch's embedded tokens) in place. */
    void apply(Backend backend, ForwardBatch batch, Tensor x);
}
