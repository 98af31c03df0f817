package dev.jvllm.spi;

import dev.jvllm.engine.ForwardBatch;

/**
 * A {@link CausalLM} whose decoder attends to an encoder's output (BART): a request's prompt is the
 * encoder's input, and its decoder starts from {@link #decoderStartTokenId}. Each step's batch names
 * every sequence's encoder input ({@code ForwardBatch.encoderInputs()}); the model encodes one in the
 * first step that reaches it and keeps what its cross-attention reads while memory allows, computing
 * it again where it was dropped.
 */
public interface EncoderDecoderModel {

    /** The token the decoder starts from (config.json's {@code decoder_start_token_id}). */
    int decoderStartTokenId();

    /** The longest encoder input the model takes (its encoder's positions). */
    int maxEncoderTokens();

    /** Device bytes the model keeps per encoder token (each decoder layer's cross-attention key and value). */
    long encoderBytesPerToken();

    /**
     * Allocates, before the engine sizes the KV cache from the device memory left, room to keep
     * what the decoder reads of encoder inputs of {@code tokensKept} tokens together (at least one
     * longest input's).
     */
    void reserveEncoderMemory(int tokensKept);

    /**
     * The encoder tokens whose outputs the model keeps at once without allocating more: the engine
     * admits requests while their encoder inputs fit it together.
     */
    int encoderTokensKept();

    /**
     * Whether what the decoder reads of every encoder input of {@code batch} is kept now, so that a
     * pass over it runs no encoder: only such a decode step may be recorded and replayed (CUDA graphs).
     * The default says no, so that a model's decode steps run as they are.
     */
    default boolean keepsEncoderOutputs(ForwardBatch batch) {
        return false;
    }
}
