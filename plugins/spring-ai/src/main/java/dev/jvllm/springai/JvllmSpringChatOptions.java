package dev.jvllm.springai;

import org.springframework.ai.chat.prompt.ChatOptions;
import org.springframework.ai.model.tool.DefaultToolCallingChatOptions;
import org.springframework.ai.model.tool.StructuredOutputChatOptions;
import org.springframework.ai.model.tool.ToolCallingChatOptions;
import org.springframework.ai.tool.ToolCallback;

import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * The options {@link JvllmSpringChatModel} takes: Spring AI's sampling options, tool callbacks (and
 * their context) and an output schema, in one object, as a provider's own options are. A model's
 * defaults of this type let {@code ChatClient} add a request's tools and output schema to them
 * ({@code ChatClient} builds each request's options from {@code getOptions().mutate()}, and adds
 * tools only to a builder of tool-calling options).
 *
 * <pre>{@code
 * var defaults = JvllmSpringChatOptions.builder().temperature(0.7).maxTokens(512).build();
 * }</pre>
 */
public final class JvllmSpringChatOptions extends DefaultToolCallingChatOptions implements StructuredOutputChatOptions {

    private final String outputSchema;

    private JvllmSpringChatOptions(List<ToolCallback> toolCallbacks, Map<String, Object> toolContext, String model, Double frequencyPenalty,
                                   Integer maxTokens, Double presencePenalty, List<String> stopSequences, Double temperature, Integer topK,
                                   Double topP, String outputSchema) {
        super(toolCallbacks, toolContext, model, frequencyPenalty, maxTokens, presencePenalty, stopSequences, temperature, topK, topP);
        this.outputSchema = outputSchema;
    }

    public static Builder builder() {
        return new Builder();
    }

    /**
     * {@code options} as these options: its sampling options, and its tools and output schema where it
     * is tool-calling or structured-output options.
     */
    public static JvllmSpringChatOptions from(ChatOptions options) {
        return options instanceof JvllmSpringChatOptions same ? same : builderOf(options).build();
    }

    private static Builder builderOf(ChatOptions options) {
        Builder b = builder().takeSamplingSetIn(options);
        if (options instanceof ToolCallingChatOptions tools) {
            if (tools.getToolCallbacks() != null) b.toolCallbacks(tools.getToolCallbacks());
            if (tools.getToolContext() != null) b.toolContext(tools.getToolContext());
        }
        if (options instanceof StructuredOutputChatOptions structured) b.outputSchema(structured.getOutputSchema());
        return b;
    }

    /** A JSON schema the answer follows (constrained decoding); null: none. */
    @Override
    public String getOutputSchema() {
        return outputSchema;
    }

    /** A builder holding these options, to change some. */
    @Override
    public Builder mutate() {
        return builderOf(this);
    }

    @Override
    public boolean equals(Object other) {
        return other instanceof JvllmSpringChatOptions o && super.equals(o) && Objects.equals(outputSchema, o.outputSchema);
    }

    @Override
    public int hashCode() {
        return 31 * super.hashCode() + Objects.hashCode(outputSchema);
    }

    /** Builds {@link JvllmSpringChatOptions}; every option left out is the model's default. */
    public static final class Builder extends DefaultToolCallingChatOptions.Builder<Builder>
            implements StructuredOutputChatOptions.Builder<Builder> {
        private String outputSchema;

        private Builder() {
        }

        /** A JSON schema the answer follows (constrained decoding). */
        @Override
        public Builder outputSchema(String outputSchema) {
            this.outputSchema = outputSchema;
            return this;
        }

        /**
         * Takes the options {@code other} sets over these: its sampling options, and its tools and output
         * schema where it is a builder of tool-calling or structured-output options of any kind (Spring's own,
         * a provider's, these), as {@code ChatClient} merges a request's options into a model's defaults.
         */
        @Override
        public Builder combineWith(ChatOptions.Builder<?> other) {
            super.combineWith(other);
            if (other instanceof Builder options) {  // the superclass took its tools
                if (options.outputSchema != null) this.outputSchema = options.outputSchema;
                return this;
            }
            ChatOptions built = other.clone().build();
            // A provider's builder not of Spring's default kind: the superclass took nothing from it.
            if (!(other instanceof org.springframework.ai.chat.prompt.DefaultChatOptionsBuilder<?>)) takeSamplingSetIn(built);
            if (built instanceof ToolCallingChatOptions tools && !(other instanceof DefaultToolCallingChatOptions.Builder<?>)) {
                // Added to the tools these options hold, as Spring's own builder adds them.
                if (tools.getToolCallbacks() != null && !tools.getToolCallbacks().isEmpty()) {
                    List<ToolCallback> merged = new java.util.ArrayList<>(this.toolCallbacks == null ? List.of() : this.toolCallbacks);
                    merged.addAll(tools.getToolCallbacks());
                    toolCallbacks(merged);
                }
                if (tools.getToolContext() != null && !tools.getToolContext().isEmpty()) {
                    Map<String, Object> context = new java.util.HashMap<>(this.toolContext == null ? Map.of() : this.toolContext);
                    context.putAll(tools.getToolContext());
                    toolContext(context);
                }
            }
            if (built instanceof StructuredOutputChatOptions structured && structured.getOutputSchema() != null) {
                this.outputSchema = structured.getOutputSchema();
            }
            return this;
        }

        /** The model and sampling options {@code options} sets (not null) over these. */
        private Builder takeSamplingSetIn(ChatOptions options) {
            if (options.getModel() != null) model(options.getModel());
            if (options.getFrequencyPenalty() != null) frequencyPenalty(options.getFrequencyPenalty());
            if (options.getMaxTokens() != null) maxTokens(options.getMaxTokens());
            if (options.getPresencePenalty() != null) presencePenalty(options.getPresencePenalty());
            if (options.getStopSequences() != null) stopSequences(options.getStopSequences());
            if (options.getTemperature() != null) temperature(options.getTemperature());
            if (options.getTopK() != null) topK(options.getTopK());
            if (options.getTopP() != null) topP(options.getTopP());
            return this;
        }

        @Override
        public JvllmSpringChatOptions build() {
            return new JvllmSpringChatOptions(toolCallbacks, toolContext, model, frequencyPenalty, maxTokens, presencePenalty, stopSequences,
                    temperature, topK, topP, outputSchema);
        }

        // The superclass's tool setters typed to this builder (its generic type already is).
        @Override
        public Builder toolCallbacks(List<ToolCallback> toolCallbacks) {
            return super.toolCallbacks(toolCallbacks);
        }

        @Override
        public Builder toolContext(Map<String, Object> toolContext) {
            return super.toolContext(toolContext);
        }
    }
}
