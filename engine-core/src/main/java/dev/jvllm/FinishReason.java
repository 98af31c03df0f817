package dev.jvllm;

import java.util.Locale;

/** Why a sequence ended, with vLLM's names ({@link #toString()} gives "stop", "length", "abort"). */
public enum FinishReason {
    /** An end-of-sequence token, a stop token id or a stop string. */
    STOP,
    /** {@code maxTokens} or the model's maximum length was reached. */
    LENGTH,
    /** The request was aborted. */
    ABORT;

    @Override
    public String toString() {
        return name().toLowerCase(Locale.ROOT);
    }
}
