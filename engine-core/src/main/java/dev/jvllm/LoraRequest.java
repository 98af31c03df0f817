package dev.jvllm;

import java.nio.file.Path;
import java.util.Objects;

/**
 * A LoRA adapter a request runs with, as vLLM's {@code LoRARequest}: a PEFT adapter directory
 * ({@code adapter_config.json} and {@code adapter_model.safetensors}) whose low-rank updates are
 * added to the base model's projections for this request only. Requests with different adapters,
 * or none, share a batch. The model must be built with {@link LLM.Builder#enableLora}.
 *
 * @param name a name for logs and errors
 * @param id   a positive number that identifies the adapter: requests with one id share its
 *             loaded weights and their cached prefixes, so one id must always name one directory
 * @param path the adapter's directory
 */
public record LoraRequest(String name, int id, Path path) {

    public LoraRequest {
        Objects.requireNonNull(name, "name");
        Objects.requireNonNull(path, "path");
        if (id < 1) throw new InvalidRequestException("loraRequest", "a LoRA request's id must be positive, not " + id);
    }
}
