package dev.jvllm.pooling;

/** How the hidden states of an input's tokens become one vector, as vLLM's {@code PoolingType}. */
public enum PoolingType {
    /** The first token's state ([CLS] for BERT-style models). */
    CLS,
    /** The last token's state (decoder embedders such as e5-mistral). */
    LAST,
    /** The mean of all tokens' states. */
    MEAN,
    /** Every token's state, one row each (token embeddings: vLLM's {@code token_embed}, multi-vector retrieval). */
    ALL
}
