package dev.jvllm;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * How {@link LLM#chat(java.util.List, SamplingParams, ChatOptions)} renders and runs a conversation:
 * vLLM's {@code LLM.chat} keyword arguments.
 *
 * @param templateVariables    extra chat-template variables ({@code chat_template_kwargs}), e.g. Qwen3's
 *                             {@code enable_thinking}; plain values only (strings, numbers, booleans,
 *                             lists and maps of them)
 * @param addGenerationPrompt  end with the header that opens the assistant's turn (default true)
 * @param continueFinalMessage leave the last message, an assistant's of text, open for the model to
 *                             continue: the rendering is cut after its text (needs addGenerationPrompt false)
 * @param lora                 the LoRA adapter to run with, or null
 * @param cacheSalt            the prompt's {@linkplain Prompt#withCacheSalt prefix-cache salt}, or null
 */
public record ChatOptions(Map<String, Object> templateVariables, boolean addGenerationPrompt, boolean continueFinalMessage,
                          LoraRequest lora, String cacheSalt) {

    public ChatOptions {
        templateVariables = java.util.Collections.unmodifiableMap(new LinkedHashMap<>(
                java.util.Objects.requireNonNull(templateVariables, "templateVariables (Map.of() for none)")));
        if (continueFinalMessage && addGenerationPrompt) {
            throw new InvalidRequestException("continueFinalMessage", "continueFinalMessage and addGenerationPrompt cannot both be true");
        }
    }

    /** vLLM's defaults: no extra variables, the generation prompt added, no adapter, no salt. */
    public static ChatOptions defaults() {
        return builder().build();
    }

    public static Builder builder() {
        return new Builder();
    }

    /** Builds {@link ChatOptions}; every setter is optional. */
    public static final class Builder {
        private final Map<String, Object> templateVariables = new LinkedHashMap<>();
        private boolean addGenerationPrompt = true;
        private boolean continueFinalMessage;
        private LoraRequest lora;
        private String cacheSalt;

        private Builder() {
        }

        /** One chat-template variable ({@code chat_template_kwargs}); a later value for a name replaces an earlier one. */
        public Builder templateVariable(String name, Object value) {
            templateVariables.put(java.util.Objects.requireNonNull(name, "name"), value);
            return this;
        }

        /** Several chat-template variables at once. */
        public Builder templateVariables(Map<String, ?> variables) {
            templateVariables.putAll(variables);
            return this;
        }

        /** See {@link ChatOptions#addGenerationPrompt()}. */
        public Builder addGenerationPrompt(boolean add) {
            this.addGenerationPrompt = add;
            return this;
        }

        /** See {@link ChatOptions#continueFinalMessage()}; also turns the generation prompt off. */
        public Builder continueFinalMessage(boolean continueFinal) {
            this.continueFinalMessage = continueFinal;
            if (continueFinal) this.addGenerationPrompt = false;
            return this;
        }

        /** See {@link ChatOptions#lora()}. */
        public Builder lora(LoraRequest lora) {
            this.lora = lora;
            return this;
        }

        /** See {@link ChatOptions#cacheSalt()}. */
        public Builder cacheSalt(String cacheSalt) {
            this.cacheSalt = cacheSalt;
            return this;
        }

        public ChatOptions build() {
            return new ChatOptions(templateVariables, addGenerationPrompt, continueFinalMessage, lora, cacheSalt);
        }
    }
}
