package dev.jvllm;

/** A prompt: text to be tokenized, or token ids given directly (vLLM's TokensPrompt). */
public sealed interface Prompt {

    static Prompt text(String text) {
        return new Text(text);
    }

    static Prompt tokens(int... tokenIds) {
        return new Tokens(tokenIds.clone());
    }

    record Text(String text) implements Prompt {
    }

    record Tokens(int[] tokenIds) implements Prompt {
    }
}
