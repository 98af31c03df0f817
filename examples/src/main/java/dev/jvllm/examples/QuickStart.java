package dev.jvllm.examples;

import dev.jvllm.LLM;
import dev.jvllm.RequestOutput;
import dev.jvllm.SamplingParams;

import java.util.List;

/** The README's Java example, compiled with the project so it stays true. */
public final class QuickStart {

    public static void main(String[] args) {
        String model = args.length > 0 ? args[0] : "models/jvllm-demo";
        // README-EXAMPLE-START
        try (LLM llm = new LLM(model)) {
            SamplingParams params = SamplingParams.builder()
                    .temperature(0.8).topP(0.95).maxTokens(48).seed(42L).build();
            List<RequestOutput> outputs = llm.generate(
                    List.of("The European Parliament", "Mr President, I would like to"), params);
            for (RequestOutput out : outputs) {
                System.out.println(out.prompt() + " ->" + out.text());
            }
        }
        // README-EXAMPLE-END
    }
}
