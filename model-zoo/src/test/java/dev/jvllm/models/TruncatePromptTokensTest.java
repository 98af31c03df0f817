package dev.jvllm.models;

import dev.jvllm.InvalidRequestException;
import dev.jvllm.LLM;
import dev.jvllm.RequestOutput;
import dev.jvllm.SamplingParams;
import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.stream.IntStream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** vLLM's truncate_prompt_tokens for generation: the last k tokens of a prompt are kept. */
class TruncatePromptTokensTest {

    @Test
    void aTruncatedPromptAnswersAsItsLastTokensAndATooLongOneIsRefused() {
        int[] prompt = IntStream.range(0, 300).map(i -> 3 + (i * 37) % 500).toArray(); // longer than the 256 positions
        SamplingParams greedy = SamplingParams.builder().temperature(0).maxTokens(4).build();
        try (LLM llm = LLM.builder().model(Golden.root().resolve("llama-plain").toString()).device("cpu").build()) {
            var tooLong = assertThrows(InvalidRequestException.class, () -> llm.generate(prompt, greedy));
            assertTrue(tooLong.getMessage().contains("truncatePromptTokens"), tooLong.getMessage());

            RequestOutput truncated = llm.generate(prompt, greedy.toBuilder().truncatePromptTokens(100).build());
            RequestOutput lastHundred = llm.generate(Arrays.copyOfRange(prompt, 200, 300), greedy);
            assertEquals(lastHundred.outputs().getFirst().tokenIds(), truncated.outputs().getFirst().tokenIds());
            assertEquals(100, truncated.promptTokenIds().size());

            RequestOutput fitted = llm.generate(prompt, greedy.toBuilder().truncatePromptTokens(-1).build());
            assertEquals(255, fitted.promptTokenIds().size());
            assertEquals(llm.generate(Arrays.copyOfRange(prompt, 45, 300), greedy).outputs().getFirst().tokenIds(),
                    fitted.outputs().getFirst().tokenIds());
        }
        var zero = assertThrows(InvalidRequestException.class, () -> SamplingParams.builder().truncatePromptTokens(0).build());
        assertEquals("truncatePromptTokens", zero.field());
    }
}
