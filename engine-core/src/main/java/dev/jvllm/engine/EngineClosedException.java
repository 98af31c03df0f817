package dev.jvllm.engine;

import dev.jvllm.JvllmException;

/** The engine was closed: requests still in flight at that moment, and every later submission, fail with this. */
public final class EngineClosedException extends JvllmException {

    public EngineClosedException(String message) {
        super(message);
    }
}
