package dev.jvllm.models.layers;

import dev.jvllm.config.ModelConfig;
import dev.jvllm.spi.CausalLM;
import dev.jvllm.spi.ModelArchitecture;
import dev.jvllm.spi.ModelContext;

import java.util.List;

/** The registry entry of a family built as a {@link PreNormDecoder}: its names and its {@link DecoderOptions}. */
public abstract class PreNormArchitecture implements ModelArchitecture {

    private final List<String> names;

    protected PreNormArchitecture(String... architectureNames) {
        this.names = List.of(architectureNames);
    }

    /** How this family differs from Llama, for the model {@code config} describes. */
    protected abstract DecoderOptions options(ModelConfig config);

    @Override
    public List<String> architectureNames() {
        return names;
    }

    @Override
    public CausalLM load(ModelContext context) {
        return new PreNormDecoder(context, options(context.config()));
    }
}
