package dev.jvllm;

/**
 * A request the engine had accepted failed while it ran (its images could not be encoded). Only
 * that request ends; the engine and its other requests go on. The message names the request and
 * what failed; the cause, where there is one, holds the internal error.
 */
public class RequestFailedException extends JvllmException {

    private final String requestId;

    public RequestFailedException(String requestId, String message, Throwable cause) {
        super(message, cause);
        this.requestId = requestId;
    }

    /** The id of the request that failed. */
    public String requestId() {
        return requestId;
    }
}
