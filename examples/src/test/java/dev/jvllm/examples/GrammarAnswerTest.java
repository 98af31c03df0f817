package dev.jvllm.examples;

import dev.jvllm.FinishReason;
import dev.jvllm.LLM;
import dev.jvllm.SamplingParams;
import dev.jvllm.StructuredOutputs;
import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/** The grammar example: the demo model's constrained answers are whole expressions its evaluator reads. */
class GrammarAnswerTest {

    @Test
    void theAnswersAreExpressionsOfTheGrammar() {
        Path demo = Files.isDirectory(Path.of("../models/jvllm-demo")) ? Path.of("../models/jvllm-demo") : Path.of("models/jvllm-demo");
        try (LLM llm = new LLM(demo.toString())) {
            GrammarAnswer.evaluate(GrammarAnswer.expression(llm, "Write a sum of a few numbers:"));
            var params = SamplingParams.builder().temperature(1.0).seed(3L).n(6).maxTokens(60)
                    .structuredOutputs(StructuredOutputs.grammar(GrammarAnswer.ARITHMETIC)).build();
            for (var answer : llm.generate("The European Parliament", params).outputs()) {
                assertEquals(FinishReason.STOP, answer.finishReason(), answer.text());
                GrammarAnswer.evaluate(answer.text());  // throws for text the grammar does not hold
            }
        }
        assertEquals(7.0, GrammarAnswer.evaluate("(1+2)*3-2"));
        assertThrows(IllegalArgumentException.class, () -> GrammarAnswer.evaluate("(1+2"));
    }
}
