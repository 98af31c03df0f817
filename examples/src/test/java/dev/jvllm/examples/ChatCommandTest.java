package dev.jvllm.examples;

import dev.jvllm.ChatMessage;
import dev.jvllm.LLM;
import dev.jvllm.SamplingParams;
import org.junit.jupiter.api.Test;

import java.io.BufferedReader;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.io.StringReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@code ./jvllm chat}: a conversation read line by line, each answer given the whole conversation before it. */
class ChatCommandTest {

    private static final Path DEMO = Files.isDirectory(Path.of("../models/jvllm-demo")) ? Path.of("../models/jvllm-demo") : Path.of("models/jvllm-demo");

    @Test
    void eachLineIsAnsweredWithTheConversationSoFarAndTheAnswersAreStreamedOut() throws Exception {
        SamplingParams greedy = SamplingParams.builder().temperature(0).maxTokens(10).build();
        ByteArrayOutputStream printed = new ByteArrayOutputStream();

        List<String> answers = Cli.chat(LLM.builder().model(DEMO.toString()), greedy, "Be brief.",
                new BufferedReader(new StringReader("What is the Commission doing?\nAnd the Council?\n\nignored\n")),
                new PrintStream(printed, true, StandardCharsets.UTF_8));

        List<String> expected = new ArrayList<>();
        try (LLM reference = LLM.builder().model(DEMO.toString()).build()) {
            List<ChatMessage> conversation = new ArrayList<>(List.of(ChatMessage.system("Be brief.")));
            for (String message : List.of("What is the Commission doing?", "And the Council?")) {
                conversation.add(ChatMessage.user(message));
                String answer = reference.chat(conversation, greedy).text();
                expected.add(answer);
                conversation.add(ChatMessage.assistant(answer));
            }
        }
        assertEquals(expected, answers, "the blank line ends the conversation");
        String output = printed.toString(StandardCharsets.UTF_8);
        assertTrue(output.contains(expected.get(0)) && output.contains(expected.get(1)), output);
    }
}
