package dev.jvllm;

/** What an {@link LLM} is loaded for, as vLLM's {@code task}/{@code runner} option. */
public enum Task {
    /** Text generation from a causal language model. */
    GENERATE,
    /** One vector per input from a pooling model ({@link LLM#embed}). */
    EMBED,
    /** {@link #EMBED} when the architecture cannot generate (encoders, headless decoders), else {@link #GENERATE}. */
    AUTO
}
