package dev.jvllm.server;

import dev.jvllm.LLM;
import dev.jvllm.SamplingParams;
import dev.jvllm.encdec.TinyBart;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.stream.Collectors;
import java.util.stream.IntStream;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * An encoder-decoder model (the tiny BART with a tokenizer, {@link TinyBart}) served through
 * {@code /v1/completions}: the prompt is the encoder's, the answer the library's, and the room check
 * for {@code max_tokens} counts the decoder's prompt, not the encoder's.
 */
class OpenAiEncoderDecoderTest {

    @TempDir
    static Path dir;
    static OpenAiServer server;
    static LLM reference;

    @BeforeAll
    static void start() throws Exception {
        TinyBart.withTokenizer(dir);
        server = OpenAiServer.builder(LLM.builder().model(dir.toString()).device("cpu").build()).port(0).servedModelName("bart").start();
        reference = LLM.builder().model(dir.toString()).device("cpu").build();
    }

    @AfterAll
    static void stop() {
        server.close();
        reference.close();
    }

    @Test
    void aCompletionIsTheLibrarysAnswerToTheEncodersPrompt() throws Exception {
        String expected = reference.generate("t5 t6 t7 t8", SamplingParams.builder().temperature(0).ignoreEos(true).maxTokens(8).build())
                .text();
        var answer = OpenAiServerTest.post(server, "/v1/completions",
                "{\"model\": \"bart\", \"prompt\": \"t5 t6 t7 t8\", \"max_tokens\": 8, \"temperature\": 0, \"ignore_eos\": true}");
        assertEquals(200, answer.status(), String.valueOf(answer.body()));
        assertEquals(expected, answer.body().path("choices").get(0).path("text").asText());
    }

    /** 100 encoder tokens and 100 new ones exceed the decoder's 128 positions only if the encoder's prompt counted. */
    @Test
    void maxTokensIsCheckedAgainstTheDecodersPromptNotTheEncoders() throws Exception {
        String prompt = IntStream.range(0, 100).mapToObj(i -> "t" + (3 + i)).collect(Collectors.joining(" "));
        var answer = OpenAiServerTest.post(server, "/v1/completions",
                "{\"model\": \"bart\", \"prompt\": \"" + prompt + "\", \"max_tokens\": 100, \"temperature\": 0, \"ignore_eos\": true}");
        assertEquals(200, answer.status(), String.valueOf(answer.body()));
        assertEquals(100, answer.body().path("usage").path("completion_tokens").asInt());
    }
}
