package dev.jvllm.encdec;

import dev.jvllm.LLM;
import dev.jvllm.Prompt;
import dev.jvllm.RequestOutput;
import dev.jvllm.SamplingParams;
import dev.jvllm.models.RuntimeAssumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * Text prompts to an encoder-decoder model, through its tokenizer ({@link TinyBart}): the encoder's
 * text gets the special tokens around it, the decoder's does not.
 */
class EncoderDecoderTextTest {

    private static final SamplingParams GREEDY = SamplingParams.builder().temperature(0).ignoreEos(true).maxTokens(8).build();

    @BeforeAll
    static void requireTheTokenizer() {
        RuntimeAssumptions.requireTokenizers();
    }

    @Test
    void theEncodersTextGetsTheSpecialTokensAndTheDecodersDoesNot(@TempDir Path dir) throws IOException {
        try (LLM llm = LLM.builder().model(TinyBart.withTokenizer(dir).toString()).device("cpu").build()) {
            RequestOutput text = llm.generate("t5 t6 t7 t8", GREEDY);
            RequestOutput ids = llm.generatePrompts(List.of(Prompt.tokens(0, 5, 6, 7, 8, 2)), GREEDY).getFirst();
            assertArrayEquals(ids.outputs().getFirst().tokenIdArray(), text.outputs().getFirst().tokenIdArray(),
                    "the encoder's text is <s> t5 t6 t7 t8 </s>");
            assertEquals("t5 t6 t7 t8", text.prompt());

            RequestOutput both = llm.generatePrompts(List.of(Prompt.encoderDecoder(Prompt.text("t5 t6 t7 t8"),
                    Prompt.text("t9 t10"))), GREEDY).getFirst();
            RequestOutput bothIds = llm.generatePrompts(List.of(Prompt.encoderDecoder(Prompt.tokens(0, 5, 6, 7, 8, 2), 9, 10)),
                    GREEDY).getFirst();
            assertEquals(List.of(2, 9, 10), both.promptTokenIds(), "the decoder's text: its words after the start token, nothing added");
            assertArrayEquals(bothIds.outputs().getFirst().tokenIdArray(), both.outputs().getFirst().tokenIdArray());
            assertEquals(8, both.text().trim().split(" +").length, "eight words decoded: \"" + both.text() + "\"");
        }
    }
}
