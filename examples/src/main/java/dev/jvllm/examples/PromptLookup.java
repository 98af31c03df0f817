package dev.jvllm.examples;

import dev.jvllm.LLM;
import dev.jvllm.SamplingParams;
import dev.jvllm.SpeculativeConfig;
import dev.jvllm.engine.EngineMetrics;

/**
 * Speculative decoding by prompt lookup (vLLM's {@code speculative_config} method "ngram"), where it
 * pays: an answer that repeats what the prompt holds (here a clause the demo model goes on repeating).
 * Each step verifies up to three tokens guessed from the text so far; the answer is the greedy one, in
 * fewer steps.
 *
 * <pre>./jvllm java dev.jvllm.examples.PromptLookup [model directory]</pre>
 */
public final class PromptLookup {

    /** An answer and what speculation saved: steps run, and tokens that came from kept guesses. */
    public record Answer(String text, int tokens, long steps, long keptGuesses) {
    }

    private PromptLookup() {
    }

    /**
     * An engine of {@code model} that verifies up to three guessed tokens a step (after a match of the last
     * 2 to 4 tokens): with its known token a step of four, the CPU kernels' token block.
     */
    public static LLM load(String model) {
        return LLM.builder().model(model).speculativeConfig(SpeculativeConfig.ngram(3, 2, 4)).build();
    }

    /** The greedy continuation of {@code document}, at most {@code maxTokens} tokens. */
    public static Answer continueText(LLM llm, String document, int maxTokens) {
        EngineMetrics before = llm.metrics();
        var output = llm.generate(document, SamplingParams.builder().temperature(0).maxTokens(maxTokens).build()).outputs().getFirst();
        EngineMetrics after = llm.metrics();
        return new Answer(output.text(), output.tokenIds().size(), after.steps() - before.steps(),
                after.acceptedDraftTokens() - before.acceptedDraftTokens());
    }

    public static void main(String[] args) {
        try (LLM llm = load(args.length > 0 ? args[0] : "models/jvllm-demo")) {
            Answer answer = continueText(llm, "The Commission shall adopt the measures. The Commission shall adopt the measures. "
                    + "The Commission shall", 96);
            System.out.println(answer.text());
            System.out.printf("%d tokens in %d steps: %d from kept guesses%n", answer.tokens(), answer.steps(), answer.keptGuesses());
        }
    }
}
