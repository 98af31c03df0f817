package dev.jvllm.spi;

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

    /**
     * Allocates, before the engine sizes the KV cache from the device memory left, room to keep
     * the cross-attention inputs of encoder inputs of {@code tokensKept} tokens together (at least one
     * longest input's). Nothing by default.
     */
    default void reserveEncoderMemory(int tokensKept) {
    }
}
