package dev.jvllm;

/** Base of every error jvllm raises on purpose; the message says what was wrong and where. */
public class JvllmException extends RuntimeException {

    public JvllmException(String message) {
        super(message);
    }

    public JvllmException(String message, Throwable cause) {
        super(message, cause);
    }
}
