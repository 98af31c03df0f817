package dev.jvllm.engine;

import dev.jvllm.JvllmException;

/**
 * The engine failed (a forward pass or a step threw) and serves nothing more: every request in
 * flight fails with this, and so does every later submission. The cause is the original failure.
 */
public final class EngineDeadException extends JvllmException {

    public EngineDeadException(String message, Throwable cause) {
        super(message, cause);
    }
}
