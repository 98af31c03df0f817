package dev.jvllm.spi;

import java.util.List;

/**
 * A family of model classes, found through {@link java.util.ServiceLoader}: the {@code architectures}
 * names of config.json it serves and how to build a model from a checkpoint. Third-party jars can
 * add architectures by listing theirs in {@code META-INF/services/dev.jvllm.spi.ModelArchitecture}.
 */
public interface ModelArchitecture {

    /** The config.json {@code architectures} names served, e.g. "LlamaForCausalLM". */
    List<String> architectureNames();

    /** Builds the model: reads its weights from the context's checkpoint onto its backend. */
    CausalLM load(ModelContext context);
}
