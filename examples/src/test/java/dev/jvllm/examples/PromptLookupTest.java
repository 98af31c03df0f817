package dev.jvllm.examples;

import dev.jvllm.LLM;
import dev.jvllm.SamplingParams;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class PromptLookupTest {

    private static final String DEMO = (java.nio.file.Files.isDirectory(java.nio.file.Path.of("../models/jvllm-demo"))
            ? java.nio.file.Path.of("../models/jvllm-demo") : java.nio.file.Path.of("models/jvllm-demo")).toString();

    @Test
    void theAnswerIsTheGreedyOneInFewerSteps() {
        String document = "Member States shall ensure that the rules are applied. Member States shall ensure that";
        String plain;
        try (LLM llm = LLM.builder().model(DEMO).build()) {
            plain = llm.generate(document, SamplingParams.builder().temperature(0).maxTokens(64).build()).text();
        }
        try (LLM llm = PromptLookup.load(DEMO)) {
            PromptLookup.Answer answer = PromptLookup.continueText(llm, document, 64);
            assertEquals(plain, answer.text());
            assertTrue(answer.keptGuesses() > 0, "no guess was kept");
            // The prompt's step makes the first token; each later step one token and its kept guesses.
            assertEquals(answer.tokens(), answer.steps() + answer.keptGuesses());
        }
    }
}
