package dev.jvllm.examples;

import dev.jvllm.ChatMessage;
import dev.jvllm.ChatOptions;
import dev.jvllm.InvalidRequestException;
import dev.jvllm.LLM;
import dev.jvllm.RequestOutput;
import dev.jvllm.SamplingParams;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/**
 * {@link LLM#chat(List, SamplingParams, ChatOptions)} as vLLM's {@code LLM.chat} keyword arguments, on the
 * demo model, whose template writes {@code <|role|>\ncontent</s>\n} a message and {@code <|assistant|>\n}
 * as the generation prompt.
 */
class ChatOptionsTest {

    private static final SamplingParams GREEDY = SamplingParams.builder().temperature(0).maxTokens(8).build();
    private static LLM llm;

    @BeforeAll
    static void load() {
        llm = LLM.builder().model(Path.of("..", "models", "jvllm-demo").toString()).build();
    }

    @AfterAll
    static void close() {
        if (llm != null) llm.close();
    }

    @Test
    void theGenerationPromptCanBeLeftOutAndTheFinalMessageContinued() {
        List<Map<String, Object>> hello = List.of(Map.of("role", "user", "content", "Hello"));
        assertEquals("<|user|>\nHello</s>\n<|assistant|>\n", llm.renderChat(hello, ChatOptions.defaults()));
        assertEquals("<|user|>\nHello</s>\n", llm.renderChat(hello, ChatOptions.builder().addGenerationPrompt(false).build()));

        List<ChatMessage> begun = List.of(ChatMessage.user("Hello"), ChatMessage.assistant("The European"));
        RequestOutput continued = llm.chat(begun, GREEDY, ChatOptions.builder().continueFinalMessage(true).build());
        assertEquals("<|user|>\nHello</s>\n<|assistant|>\nThe European", continued.prompt());
        RequestOutput direct = llm.generate(llm.tokenizer().encode(continued.prompt(), false), GREEDY);
        assertEquals(direct.text(), continued.text(), "the model goes on from the message's last word");
    }

    @Test
    void aFinalMessageThatIsNotTheAssistantsOrBothOptionsAreRefusedByName() {
        var user = assertThrows(InvalidRequestException.class, () -> llm.chat(List.of(ChatMessage.user("Hello")), GREEDY,
                ChatOptions.builder().continueFinalMessage(true).build()));
        assertEquals("continueFinalMessage", user.field());
        var both = assertThrows(InvalidRequestException.class,
                () -> new ChatOptions(Map.of(), true, true, null, null));
        assertEquals("continueFinalMessage", both.field());
    }
}
