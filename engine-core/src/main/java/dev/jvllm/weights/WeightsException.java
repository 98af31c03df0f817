package dev.jvllm.weights;

import dev.jvllm.JvllmException;

/** A checkpoint file is missing, malformed or inconsistent; the message names the file and tensor. */
public class WeightsException extends JvllmException {

    public WeightsException(String message) {
        super(message);
    }

    public WeightsException(String message, Throwable cause) {
        super(message, cause);
    }
}
