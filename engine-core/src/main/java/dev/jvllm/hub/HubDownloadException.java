package dev.jvllm.hub;

import dev.jvllm.JvllmException;

/**
 * A download from the Hugging Face Hub failed: the message names the model, the file where one was
 * being fetched, and what the Hub answered (never the token, nor a signed download address).
 */
public class HubDownloadException extends JvllmException {

    private final int status;

    public HubDownloadException(String message) {
        this(message, -1, null);
    }

    public HubDownloadException(String message, Throwable cause) {
        this(message, -1, cause);
    }

    public HubDownloadException(String message, int status, Throwable cause) {
        super(message, cause);
        this.status = status;
    }

    /** The HTTP status the Hub answered with, or -1 where the failure was not an answer (I/O, checksum, names). */
    public int status() {
        return status;
    }
}
