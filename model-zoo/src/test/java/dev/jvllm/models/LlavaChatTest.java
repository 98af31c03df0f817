package dev.jvllm.models;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.jvllm.ChatMessage;
import dev.jvllm.ChatMessage.Part;
import dev.jvllm.ImageInput;
import dev.jvllm.InvalidRequestException;
import dev.jvllm.LLM;
import dev.jvllm.Prompt;
import dev.jvllm.RequestOutput;
import dev.jvllm.SamplingParams;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Collections;
import java.util.List;

import static dev.jvllm.models.LlavaChatModel.IMAGE_TOKEN;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Chat with images on the tiny LLaVA ({@link LlavaChatModel}): the messages' images go with the
 * rendered prompt, their placeholders where the template puts them, as vLLM's {@code LLM.chat}.
 */
class LlavaChatTest {

    private static ImageInput IMAGE0, IMAGE1;

    /** The tokenizer (DJL) and PNG decoding (java.desktop) this CPU test needs; the GPU machine's kit carries neither. */
    @org.junit.jupiter.api.BeforeAll
    static void requireTheTokenizerAndPngDecoding() {
        RuntimeAssumptions.requirePngDecoding();
        RuntimeAssumptions.requireTokenizers();
        IMAGE0 = LlavaChatModel.image(0);
        IMAGE1 = LlavaChatModel.image(1);
    }

    private static LLM llm(Path directory) {
        return LLM.builder().model(directory.toString()).device("cpu").maxModelLen(128).build();
    }

    private static SamplingParams greedy() {
        return SamplingParams.builder().temperature(0).ignoreEos(true).maxTokens(16).build();
    }

    private static int[] tokens(RequestOutput output) {
        return output.outputs().getFirst().tokenIdArray();
    }

    private static int[] promptTokens(RequestOutput output) {
        return output.promptTokenIds().stream().mapToInt(Integer::intValue).toArray();
    }

    /** The ids of a prompt's text, as chat encodes it (no special tokens added). */
    private static Prompt asPrompt(LLM llm, String rendered, List<ImageInput> images) {
        return Prompt.tokens(llm.tokenizer().encode(rendered, false), images);
    }

    @Test
    void aLlavaTemplatePutsTheImageBeforeTheTextAndTheChatIsThatPromptWithTheImage(@TempDir Path dir) throws IOException {
        try (LLM llm = llm(LlavaChatModel.write(dir, LlavaChatModel.LLAVA_TEMPLATE))) {
            List<ChatMessage> messages = List.of(ChatMessage.user("What is shown?", IMAGE0));
            String rendered = llm.renderChat(messages);
            assertEquals("USER: <image>\nWhat is shown? ASSISTANT:", rendered);

            RequestOutput chat = llm.chat(messages, greedy());
            RequestOutput direct = llm.generatePrompts(List.of(asPrompt(llm, rendered, List.of(IMAGE0))), greedy()).getFirst();
            RequestOutput asText = llm.generatePrompts(List.of(Prompt.text(rendered, List.of(IMAGE0))), greedy()).getFirst();
            assertArrayEquals(tokens(direct), tokens(chat));
            assertArrayEquals(tokens(direct), tokens(asText));
            assertEquals(direct.text(), chat.text());
            // USER : then the image's 16 positions, then \n and the text
            int[] prompt = promptTokens(chat);
            assertEquals(2 + 16 + 7, prompt.length);
            assertEquals(LlavaChatModel.NEWLINE, prompt[18]);
            for (int i = 2; i < 18; i++) assertEquals(IMAGE_TOKEN, prompt[i]);
        }
    }

    @Test
    void imagesGoInMessageOrderThenPartOrder(@TempDir Path dir) throws IOException {
        try (LLM llm = llm(LlavaChatModel.write(dir, LlavaChatModel.LLAVA_TEMPLATE))) {
            List<ChatMessage> messages = List.of(ChatMessage.system("Be brief."), ChatMessage.user("What is shown?", IMAGE1),
                    ChatMessage.assistant("w300 w301"), ChatMessage.user("And now?", IMAGE0));
            String rendered = llm.renderChat(messages);
            assertEquals("SYSTEM: Be brief. USER: <image>\nWhat is shown? ASSISTANT: w300 w301 USER: <image>\nAnd now? ASSISTANT:", rendered);
            RequestOutput chat = llm.chat(messages, greedy());
            RequestOutput direct = llm.generatePrompts(List.of(asPrompt(llm, rendered, List.of(IMAGE1, IMAGE0))), greedy()).getFirst();
            assertArrayEquals(tokens(direct), tokens(chat));
            assertArrayEquals(promptTokens(direct), promptTokens(chat));
            assertEquals(32, Collections.frequency(chat.promptTokenIds(), IMAGE_TOKEN));
        }
    }

    @Test
    void interleavedPartsGiveTransformersGreedyTokensForTheGoldenPrompt(@TempDir Path dir) throws IOException {
        // golden prompt 1: [1, <image>, 480, 216, <image>, 104, 356, 79, 236, 74] with images 0 and 1
        JsonNode golden;
        try (InputStream in = LlavaChatModel.class.getResourceAsStream("/vision-goldens/llava-default/goldens.json")) {
            golden = new ObjectMapper().readTree(in).get("prompts").get(1);
        }
        try (LLM llm = llm(LlavaChatModel.write(dir, LlavaChatModel.INTERLEAVED_TEMPLATE))) {
            ChatMessage message = new ChatMessage("user", List.of(Part.image(IMAGE0), Part.text("w480 w216"), Part.image(IMAGE1),
                    Part.text("w104 w356 w79 w236 w74")));
            RequestOutput chat = llm.chat(List.of(message), greedy());
            assertArrayEquals(Golden.ints(golden.get("prompt_token_ids")), promptTokens(chat));
            assertArrayEquals(Golden.ints(golden.get("greedy_token_ids")), tokens(chat));
        }
    }

    @Test
    void aStringTemplateGetsThePlaceholderOnALineBeforeTheText(@TempDir Path dir) throws IOException {
        try (LLM llm = llm(LlavaChatModel.write(dir, LlavaChatModel.STRING_TEMPLATE))) {
            List<ChatMessage> messages = List.of(ChatMessage.user("Describe both images.", IMAGE0, IMAGE1));
            String rendered = llm.renderChat(messages);
            assertEquals("user: <image>\n<image>\nDescribe both images.\n", rendered);
            RequestOutput chat = llm.chat(messages, greedy());
            RequestOutput direct = llm.generatePrompts(List.of(Prompt.text(rendered, List.of(IMAGE0, IMAGE1))), greedy()).getFirst();
            assertArrayEquals(tokens(direct), tokens(chat));
            assertEquals(32, Collections.frequency(chat.promptTokenIds(), IMAGE_TOKEN));
        }
    }

    @Test
    void placeholdersThatDoNotMatchTheImagesAreRefusedAndTheModelServesOn(@TempDir Path dir) throws IOException {
        try (LLM llm = llm(LlavaChatModel.write(dir, LlavaChatModel.STRING_TEMPLATE))) {
            InvalidRequestException e = assertThrows(InvalidRequestException.class,
                    () -> llm.chat(List.of(ChatMessage.user("<image> and <image>", IMAGE0)), greedy()));
            assertEquals("messages", e.field());
            // an image the template leaves out leaves more images than placeholders: the engine refuses it
            e = assertThrows(InvalidRequestException.class, () -> llm.chat(List.of(new ChatMessage("user", "<image>"),
                    ChatMessage.user("What is shown?", IMAGE0)), greedy()));
            assertEquals("images", e.field());
            assertEquals(16, tokens(llm.chat(List.of(ChatMessage.user("What is shown?", IMAGE0)), greedy())).length);
        }
    }

    @Test
    void aTextModelRefusesImagesInAChat() {
        Path demo = Files.isDirectory(Path.of("../models/jvllm-demo")) ? Path.of("../models/jvllm-demo") : Path.of("models/jvllm-demo");
        try (LLM llm = LLM.builder().model(demo.toString()).device("cpu").build()) {
            InvalidRequestException e = assertThrows(InvalidRequestException.class,
                    () -> llm.chat(List.of(ChatMessage.user("What is shown?", IMAGE0)), greedy()));
            assertEquals("images", e.field());
            assertTrue(e.getMessage().contains("takes no images"), e.getMessage());
        }
    }

}
