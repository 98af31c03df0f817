package dev.jvllm.models.layers;

import dev.jvllm.config.ModelConfig;
import dev.jvllm.spi.CausalLM;
import dev.jvllm.spi.ModelArchitecture;
import dev.jvllm.spi.ModelContext;
import dev.jvllm.spi.PoolingModel;

import java.util.List;
import java.util.function.Function;
import java.util.function.UnaryOperator;

/**
 * The registry entry of a family built as a {@link PreNormDecoder}: its config.json architecture
 * names and how it differs from Llama. Such a checkpoint also embeds ({@link #loadPooling}).
 */
public abstract class PreNormArchitecture implements ModelArchitecture {

    private final List<String> names;
    private final UnaryOperator<ModelConfig> llamaFields;
    private final Function<ModelConfig, DecoderOptions> options;

    /**
     * @param names   the {@code architectures} names served
     * @param options the family's differences for the model a config describes
     */
    protected PreNormArchitecture(List<String> names, Function<ModelConfig, DecoderOptions> options) {
        this(names, UnaryOperator.identity(), options);
    }

    /**
     * For a family whose config.json names its hyperparameters in its own way.
     *
     * @param llamaFields the config restated in the field names {@link PreNormDecoder} reads (Llama's)
     * @param options     the family's differences, read from the restated config
     */
    protected PreNormArchitecture(List<String> names, UnaryOperator<ModelConfig> llamaFields,
                                  Function<ModelConfig, DecoderOptions> options) {
        this.names = List.copyOf(names);
        this.llamaFields = llamaFields;
        this.options = options;
    }

    @Override
    public List<String> architectureNames() {
        return names;
    }

    /** The family's differences for the model a config describes. */
    public DecoderOptions optionsFor(ModelConfig config) {
        return options.apply(llamaFields.apply(config));
    }

    @Override
    public CausalLM load(ModelContext context) {
        return new PreNormDecoder(restated(context), optionsFor(context.config()));
    }

    /**
     * As vLLM's pooling runner on a causal LM: the same decoder without its LM head, its final-normed
     * states pooled (the last token's unless the checkpoint's sentence-transformers files say otherwise).
     */
    @Override
    public PoolingModel loadPooling(ModelContext context) {
        return new PreNormDecoder(restated(context), optionsFor(context.config()), "model", false);
    }

    /**
     * This family's decoder as the language model of a multimodal checkpoint: its config {@code text}
     * (a section of the checkpoint's), its model-level weights under {@code decoder} and its head at
     * {@code lmHead} (or tied to the embeddings).
     */
    public PreNormDecoder loadLanguageModel(ModelContext context, ModelConfig text, String decoder, String lmHead) {
        DecoderOptions options = optionsFor(text);
        ModelContext language = new ModelContext(llamaFields.apply(text), context.checkpoint(), context.backend(), context.maxModelLen(),
                context.modelDirectory());
        return new PreNormDecoder(language, options, options.names().under(decoder, lmHead), true, null);
    }

    /** The context with its config restated in the field names {@link PreNormDecoder} reads. */
    protected ModelContext restated(ModelContext context) {
        return new ModelContext(llamaFields.apply(context.config()), context.checkpoint(), context.backend(),
                context.maxModelLen(), context.modelDirectory());
    }
}
