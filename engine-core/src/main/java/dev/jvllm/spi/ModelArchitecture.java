package dev.jvllm.spi;

import dev.jvllm.JvllmException;

import java.util.List;

/**
 * A family of model classes, found through {@link java.util.ServiceLoader}: the {@code architectures}
 * names of config.json it serves and how to build a model from a checkpoint. Third-party jars can
 * add architectures by listing theirs in {@code META-INF/services/dev.jvllm.spi.ModelArchitecture}.
 */
public interface ModelArchitecture {

    /** The config.json {@code architectures} names served, e.g. "LlamaForCausalLM". */
    List<String> architectureNames();

    /**
     * The config.json {@code model_type} values whose checkpoints this architecture loads when their
     * {@code architectures} names no served class (or none), as Transformers' Auto classes choose a
     * class by {@code model_type}; e.g. "llama". Empty by default.
     */
    default List<String> modelTypes() {
        return List.of();
    }

    /** Builds the model: reads its weights from the context's checkpoint onto its backend. */
    CausalLM load(ModelContext context);

    /**
     * The longest sequence the model was trained for, the default maximum model length: the config's
     * {@code max_position_embeddings} (or its text_config's). A family whose config leaves it to a
     * default of its own says so here.
     */
    default int maxPositions(dev.jvllm.config.ModelConfig config) {
        return config.maxPositionEmbeddings();
    }

    /** Whether {@link #load} gives a generator; false for encoders and decoders saved without their head. */
    default boolean generates() {
        return true;
    }

    /** Whether {@link #loadPooling} gives a sequence classifier ({@link PoolingModel#classifier()}): {@code *ForSequenceClassification}. */
    default boolean classifies() {
        return false;
    }

    /**
     * Builds the model as an embedder (its final hidden states, no language-model head).
     *
     * @throws JvllmException when this architecture cannot embed
     */
    default PoolingModel loadPooling(ModelContext context) {
        throw new JvllmException("architecture " + architectureNames() + " cannot be used for embeddings");
    }
}
