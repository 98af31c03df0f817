package dev.jvllm.config;

import dev.jvllm.JvllmException;

/** config.json or generation_config.json is missing, malformed or lacks a required field (named in the message). */
public class ConfigException extends JvllmException {

    public ConfigException(String message) {
        super(message);
    }

    public ConfigException(String message, Throwable cause) {
        super(message, cause);
    }
}
