package dev.jvllm.spi;

import dev.jvllm.config.ModelConfig;

import java.util.Optional;

/**
 * A model class that serves checkpoints whose {@code architectures} no native class names, from
 * what their config.json and tensor names show: vLLM's Transformers fallback, for the families
 * built the way most decoders are. {@link ModelRegistry#find} takes it last, after the native
 * classes and {@code model_type}, and only where {@link #refusal} has nothing against the config;
 * {@link #load} then checks every tensor of the checkpoint and refuses, naming them, those it
 * cannot place.
 */
public interface GenericArchitecture extends ModelArchitecture {

    /**
     * Why this config cannot be served generically (a field whose meaning the generic class would
     * ignore, a missing dimension), or empty where loading may be tried.
     */
    Optional<String> refusal(ModelConfig config);
}
