package dev.jvllm.models;

import dev.jvllm.ChatMessage;
import dev.jvllm.ChatMessage.Part;
import dev.jvllm.ImageInput;
import dev.jvllm.LLM;
import dev.jvllm.RequestOutput;
import dev.jvllm.SamplingParams;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

/**
 * Chat with images on the tiny Qwen2-VL and InternVL ({@link LlavaChatModel}'s word tokenizer with
 * each family's special tokens): a template in the shape of each family's renders an image part
 * (Qwen2-VL's {@code <|vision_start|><|image_pad|><|vision_end|>}, InternVL's bare
 * {@code <IMG_CONTEXT>}), and the chat gives the golden's prompt and tokens.
 */
class VisionChatTest {

    private static final String QWEN2_VL_TEMPLATE = "{{ bos_token }}{% for m in messages %}{% for p in m['content'] %}"
            + "{% if p['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>{% else %}{{ p['text'] }}{% endif %}"
            + "{% endfor %}{% endfor %}";
    private static final String INTERNVL_TEMPLATE = "{{ bos_token }}{% for m in messages %}{% for p in m['content'] %}"
            + "{% if p['type'] == 'image' %}<IMG_CONTEXT>{% else %}{{ p['text'] }}{% endif %}{% endfor %}{% endfor %}";

    @BeforeAll
    static void requireTheTokenizerAndPngDecoding() {
        LlavaChatTest.requireTheTokenizerAndPngDecoding();
    }

    @Test
    void aQwen2VlChatGivesTheGoldensPromptAndTokens(@TempDir Path dir) throws IOException {
        assertChat(dir, "qwen2-vl", Map.of(500, "<|image_pad|>", 501, "<|vision_start|>", 502, "<|vision_end|>"),
                QWEN2_VL_TEMPLATE);
    }

    /** InternVL's template writes the placeholder alone; the engine adds {@code <img>} and {@code </img>}. */
    @Test
    void anInternVlChatGivesTheGoldensPromptAndTokens(@TempDir Path dir) throws IOException {
        assertChat(dir, "internvl-qwen2", Map.of(500, "<IMG_CONTEXT>", 501, "<img>", 502, "</img>"), INTERNVL_TEMPLATE);
    }

    /** The golden's first prompt (words, an image between its marks, words) as a chat message of text, image, text. */
    private static void assertChat(Path dir, String name, Map<Integer, String> special, String template) throws IOException {
        List<String> files = new ArrayList<>(List.of("config.json", "generation_config.json", "preprocessor_config.json",
                "model.safetensors"));
        if (name.startsWith("internvl")) files.add("tokenizer_config.json");
        Path model = LlavaChatModel.write(dir, "/vision-goldens/" + name + "/", files, special, template);
        LlavaGoldenTest.Case golden = LlavaGoldenTest.Case.load(name, VisionGoldens::decoded);
        int[] ids = golden.prompts().getFirst();
        int start = 1;
        while (ids[start] != 501) start++;
        int end = start;
        while (ids[end] != 502) end++;
        ImageInput image = golden.imagesOf(0).getFirst();
        ChatMessage message = new ChatMessage("user", List.of(Part.text(words(ids, 1, start)), Part.image(image),
                Part.text(words(ids, end + 1, ids.length))));
        try (LLM llm = LLM.builder().model(model.toString()).device("cpu").maxModelLen(256).build()) {
            RequestOutput chat = llm.chat(List.of(message), SamplingParams.builder().temperature(0).ignoreEos(true).maxTokens(16)
                    .build());
            assertArrayEquals(ids, chat.promptTokenIds().stream().mapToInt(Integer::intValue).toArray(), name + " prompt");
            assertArrayEquals(golden.greedy().getFirst(), chat.outputs().getFirst().tokenIdArray(), name + " tokens");
        }
    }

    private static String words(int[] ids, int from, int to) {
        StringBuilder text = new StringBuilder();
        for (int i = from; i < to; i++) text.append(i > from ? " " : "").append(LlavaChatModel.word(ids[i]));
        return text.toString();
    }
}
