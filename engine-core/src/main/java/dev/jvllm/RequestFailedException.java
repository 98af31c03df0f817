package dev.jvllm;

/**
 * A request the engine had accepted failed while it ran (its images could not be encoded, or its
 * structured output needed more automaton states than a pattern may make). Only that request ends;
 * the engine and its other requests go on. The message names the request and what failed; the
 * cause, where there is one, holds the internal error.
 */
public class RequestFailedException extends JvllmException {

    private final String requestId;
    private final java.util.List<RequestOutput> outputs;

    public RequestFailedException(String requestId, String message, Throwable cause) {
        this(requestId, message, cause, java.util.List.of());
    }

    /**
     * @param outputs what the other requests of the same call gave, in its order (a failed
     *                request's entry: its output so far, finished with "abort")
     */
    public RequestFailedException(String requestId, String message, Throwable cause, java.util.List<RequestOutput> outputs) {
        super(message, cause);
        this.requestId = requestId;
        this.outputs = java.util.Collections.unmodifiableList(new java.util.ArrayList<>(outputs));
    }

    /** The id of the request that failed. */
    public String requestId() {
        return requestId;
    }

    /**
     * Where {@code LLM.generate} threw this after the call's other prompts ran to their end: every
     * prompt's output, in the call's order, so that none of the others' work is lost; else empty.
     */
    public java.util.List<RequestOutput> outputs() {
        return outputs;
    }
}
