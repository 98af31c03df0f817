package dev.jvllm.hub;

import dev.jvllm.LLM;
import dev.jvllm.SamplingParams;

/**
 * Run as its own process by {@link LlmFromTheHubTest}, so that the environment names the Hub and the
 * cache: loads the model id {@code args[0]} as a user would and prints its greedy continuation of {@code args[1]}.
 */
public final class GenerateFromAHubId {

    private GenerateFromAHubId() {
    }

    public static void main(String[] args) {
        try (LLM llm = new LLM(args[0])) {
            System.out.println("TEXT:" + llm.generate(args[1], SamplingParams.builder().temperature(0).maxTokens(12).build()).text());
        }
    }
}
