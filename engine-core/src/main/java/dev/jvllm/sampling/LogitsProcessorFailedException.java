package dev.jvllm.sampling;

/** A request's own {@link dev.jvllm.LogitsProcessor} threw: its request fails, the batch goes on. */
public final class LogitsProcessorFailedException extends RuntimeException {

    LogitsProcessorFailedException(Throwable cause) {
        super("its logits processor threw " + cause, cause);
    }

    LogitsProcessorFailedException(String what) {
        super("its logits processor " + what);
    }
}
