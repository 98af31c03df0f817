package dev.jvllm.models;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.jvllm.ChatMessage;
import dev.jvllm.ChatMessage.Part;
import dev.jvllm.InvalidRequestException;
import dev.jvllm.LLM;
import dev.jvllm.Prompt;
import dev.jvllm.RequestOutput;
import dev.jvllm.SamplingParams;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Phi-3-Vision's prompts as text: images marked {@code <|image_1|>}, {@code <|image_2|>}, ... (the tiny
 * golden with {@link LlavaChatModel}'s word-level tokenizer, {@code <|image|>} its id 500), the text
 * between tags tokenized apart as the Hub's processor does, and chats writing each image's numbered tag.
 */
class Phi3VTextPromptTest {

    private static final String GOLDEN = "/vision-goldens/phi3v/";
    private static final List<String> FILES = List.of("config.json", "preprocessor_config.json", "model.safetensors");
    private static final SamplingParams GREEDY = SamplingParams.builder().temperature(0).ignoreEos(true).maxTokens(16).build();

    @BeforeAll
    static void requireTheTokenizerAndPngDecoding() {
        RuntimeAssumptions.requireTokenizers();
        RuntimeAssumptions.requirePngDecoding();
    }

    private static Path model(Path dir, String template) throws IOException {
        return LlavaChatModel.write(dir, GOLDEN, FILES, Map.of(500, "<|image|>"), template);
    }

    /** The golden's second prompt (BOS, image 1, two words, image 2, five words) written with tags. */
    private static String tagged(int[] ids) {
        StringBuilder text = new StringBuilder();
        int image = 0;
        for (int i = 0; i < ids.length; i++) {
            if (ids[i] == 1) text.append("<s>");
            else if (ids[i] == 500) text.append("<|image_").append(++image).append("|>");
            else text.append(' ').append(LlavaChatModel.word(ids[i])).append(' ');
        }
        return text.toString();
    }

    @Test
    void aTextPromptWithNumberedTagsGivesTheGoldensPromptAndTokens(@TempDir Path dir) throws IOException {
        LlavaGoldenTest.Case golden = LlavaGoldenTest.Case.load("phi3v", VisionGoldens::decoded);
        try (LLM llm = LLM.builder().model(model(dir, LlavaChatModel.STRING_TEMPLATE).toString()).device("cpu").maxModelLen(256).build()) {
            String text = tagged(golden.collapsed(1));
            RequestOutput out = llm.generatePrompts(List.of(Prompt.text(text, golden.imagesOf(1))), GREEDY).getFirst();
            assertArrayEquals(golden.prompts().get(1), out.promptTokenIds().stream().mapToInt(Integer::intValue).toArray());
            assertArrayEquals(golden.greedy().get(1), out.outputs().getFirst().tokenIdArray());
            // Tags bind images by number: image 2's tag first, the images given the other way round.
            String swapped = text.replaceFirst("<\\|image_1\\|>", "<|image_X|>").replaceFirst("<\\|image_2\\|>", "<|image_1|>")
                    .replace("<|image_X|>", "<|image_2|>");
            RequestOutput bound = llm.generatePrompts(List.of(Prompt.text(swapped, golden.imagesOf(1).reversed())), GREEDY).getFirst();
            assertArrayEquals(golden.greedy().get(1), bound.outputs().getFirst().tokenIdArray());
            var images = golden.imagesOf(1);
            for (String[] bad : new String[][]{{"<|image_1|> w100 <|image_1|>", "twice"}, {"<|image_1|> w100 <|image_3|>", "names no image"},
                    {"<|image_1|> w100", "2 images and 1 tag"}, {"<|image_1|> <|image|> w100 <|image_2|>", "image token itself"}}) {
                var e = assertThrows(InvalidRequestException.class, () -> llm.engine().textPrompt(bad[0], true, images), bad[0]);
                assertEquals("prompt", e.field());
                assertTrue(e.getMessage().contains(bad[1]), e.getMessage());
            }
        }
    }

    /** Two messages: the first an image alone, the second writing its image's tag between words. */
    @Test
    void aChatWritesEachImagesNumberedTag(@TempDir Path dir) throws IOException {
        LlavaGoldenTest.Case golden = LlavaGoldenTest.Case.load("phi3v", VisionGoldens::decoded);
        int[] ids = golden.collapsed(1);
        String template = "{{ bos_token }}{% for m in messages %}{{ m['content'] }}{% endfor %}";
        StringBuilder second = new StringBuilder();
        for (int i = 2; i < ids.length; i++) second.append(ids[i] == 500 ? "<|image_2|>" : " " + LlavaChatModel.word(ids[i]) + " ");
        var images = golden.imagesOf(1);
        List<ChatMessage> chat = List.of(new ChatMessage("user", List.of(Part.image(images.get(0)))),
                new ChatMessage("user", List.of(Part.text(second.toString()), Part.image(images.get(1)))));
        try (LLM llm = LLM.builder().model(model(dir, template).toString()).device("cpu").maxModelLen(256).build()) {
            String rendered = llm.renderChat(chat);
            assertTrue(rendered.startsWith("<s><|image_1|> ") && rendered.indexOf("<|image_2|>") == rendered.lastIndexOf("<|image_2|>"),
                    rendered);
            RequestOutput out = llm.chat(chat, GREEDY);
            assertArrayEquals(golden.prompts().get(1), out.promptTokenIds().stream().mapToInt(Integer::intValue).toArray());
            assertArrayEquals(golden.greedy().get(1), out.outputs().getFirst().tokenIdArray());
            // A message writing another message's tag: refused naming the messages, not a prompt the caller never wrote.
            var twice = assertThrows(InvalidRequestException.class, () -> llm.chat(List.of(
                    new ChatMessage("user", List.of(Part.text("w100 <|image_2|>"), Part.image(images.get(0)))),
                    new ChatMessage("user", List.of(Part.image(images.get(1))))), GREEDY));
            assertEquals("messages", twice.field());
            assertTrue(twice.getMessage().contains("twice"), twice.getMessage());
        }
    }

    /** A tokenizer that puts {@code <s>} before a text gives each piece between tags its own, as the Hub's processor does. */
    @Test
    void eachPieceBetweenTagsGetsTheTokenizersSpecialTokens(@TempDir Path dir) throws IOException {
        Path model = model(dir, LlavaChatModel.STRING_TEMPLATE);
        ObjectMapper json = new ObjectMapper();
        ObjectNode tokenizer = (ObjectNode) json.readTree(model.resolve("tokenizer.json").toFile());
        tokenizer.set("post_processor", json.readTree("""
                {"type": "TemplateProcessing",
                 "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
                 "pair": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                          {"Sequence": {"id": "B", "type_id": 1}}],
                 "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}}}"""));
        json.writeValue(model.resolve("tokenizer.json").toFile(), tokenizer);
        try (LLM llm = LLM.builder().model(model.toString()).device("cpu").maxModelLen(256).build()) {
            var image = List.of(LlavaGoldenTest.Case.load("phi3v", VisionGoldens::decoded).images().get(2));
            assertArrayEquals(new int[]{1, 100, 500, 1, 101, 102}, llm.engine().textPrompt("w100 <|image_1|> w101 w102", true, image).tokenIds());
            assertArrayEquals(new int[]{1, 100, 500, 1, 101, 102}, llm.engine().textPrompt("w100 <|image_1|> w101 w102", false, image).tokenIds(),
                    "with images, each piece gets the special tokens as the processor adds them");
            assertArrayEquals(new int[]{1, 100, 101}, llm.engine().textPrompt("w100 w101", true, List.of()).tokenIds(), "no images: the tokenizer's ids");
            assertArrayEquals(new int[]{100, 101}, llm.engine().textPrompt("w100 w101", false, List.of()).tokenIds());
        }
    }
}
