package dev.jvllm;

/** What an {@link LLM} is loaded for, as vLLM's {@code task}/{@code runner} option. */
public enum Task {
    /** Text generation from a causal language model. */
    GENERATE,
    /** One vector per input from a pooling model ({@link LLM#embed}). */
    EMBED,
    /**
     * Classes of each input, or the relevance of a pair of texts, from a sequence-classification model
     * ({@code *ForSequenceClassification}: classifiers, cross-encoder rerankers; {@link LLM#classify},
     * {@link LLM#score}).
     */
    CLASSIFY,
    /**
     * {@link #CLASSIFY} for a sequence-classification model, {@link #EMBED} when the architecture cannot
     * generate (encoders, headless decoders), else {@link #GENERATE}.
     */
    AUTO
}
