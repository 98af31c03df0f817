package dev.jvllm;

import dev.jvllm.tokenizer.ChatTemplate;
import dev.jvllm.tokenizer.ChatTemplate.ContentFormat;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Messages with images, and their content as string and as OpenAI-format templates read it (vLLM's content formats). */
class ChatMessageTest {

    private static final ImageInput RED = ImageInput.rgb(1, 1, new byte[]{(byte) 255, 0, 0});
    private static final ImageInput BLUE = ImageInput.rgb(1, 1, new byte[]{0, 0, (byte) 255});

    /** A template that reads content as a string. */
    private static final ChatTemplate STRING = ChatTemplate.compile(
            "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}{% if add_generation_prompt %}assistant:{% endif %}");
    /** A LLaVA-style template: images of a message, then its text parts. */
    private static final ChatTemplate LLAVA = ChatTemplate.compile("{% for message in messages %}{{ message['role'].upper() + ': ' }}"
            + "{% for c in message['content'] | selectattr('type', 'equalto', 'image') %}{{ '<image>\\n' }}{% endfor %}"
            + "{% for c in message['content'] | selectattr('type', 'equalto', 'text') %}{{ c['text'] + ' ' }}{% endfor %}"
            + "{% endfor %}{% if add_generation_prompt %}{{ 'ASSISTANT:' }}{% endif %}");

    private static String render(ChatTemplate template, List<ChatMessage> messages) {
        var values = messages.stream().map(ChatMessage::asTemplateValue).toList();
        return template.render(ChatContent.format(values, template.contentFormat(), new ChatContent.Placeholders(n -> "<image>", false)), true);
    }

    @Test
    void aTextMessageIsStillARoleAndItsContent() {
        ChatMessage m = new ChatMessage("user", "Hello");
        assertEquals("user", m.role());
        assertEquals("Hello", m.content());
        assertEquals(List.of(ChatMessage.Part.text("Hello")), m.parts());
        assertEquals(List.of(), m.images());
        assertEquals(m, ChatMessage.user("Hello"));
        assertEquals(Map.of("role", "user", "content", "Hello"), m.asTemplateValue());
        assertThrows(NullPointerException.class, () -> new ChatMessage("user", (String) null));
    }

    @Test
    void aUserMessageWithImagesHoldsTheImagesThenTheText() {
        ChatMessage m = ChatMessage.user("What differs?", RED, BLUE);
        assertEquals(List.of(ChatMessage.Part.image(RED), ChatMessage.Part.image(BLUE), ChatMessage.Part.text("What differs?")), m.parts());
        assertEquals(List.of(RED, BLUE), m.images());
        assertEquals("What differs?", m.content());
        assertEquals(List.of(ChatMessage.Part.image(RED)), ChatMessage.user("", RED).parts());
    }

    @Test
    void theTemplatesFormatIsDetected() {
        assertEquals(ContentFormat.STRING, STRING.contentFormat());
        assertEquals(ContentFormat.OPENAI, LLAVA.contentFormat());
    }

    @Test
    void aStringTemplateGetsAPlaceholderLinePerImageBeforeTheText() {
        assertEquals("system: Be brief.\nuser: <image>\nWhat is shown?\nassistant:",
                render(STRING, List.of(ChatMessage.system("Be brief."), ChatMessage.user("What is shown?", RED))));
        assertEquals("user: <image>\n<image>\nCompare\nthese\nassistant:", render(STRING, List.of(new ChatMessage("user",
                List.of(ChatMessage.Part.text("Compare"), ChatMessage.Part.image(RED), ChatMessage.Part.text("these"),
                        ChatMessage.Part.image(BLUE))))));
        assertEquals("user: <image>\nassistant:", render(STRING, List.of(ChatMessage.user("", RED))));
    }

    @Test
    void aPlaceholderTheTextAlreadyHoldsCountsAsOneOfItsImages() {
        assertEquals("user: <image>\nLeft: <image>, right?\nassistant:",
                render(STRING, List.of(ChatMessage.user("Left: <image>, right?", RED, BLUE))));
        InvalidRequestException e = assertThrows(InvalidRequestException.class,
                () -> render(STRING, List.of(ChatMessage.user("<image><image>", RED))));
        assertEquals("messages", e.field());
        assertTrue(e.getMessage().contains("2 times for 1 image"), e.getMessage());
    }

    @Test
    void anOpenAiTemplateGetsTheParts() {
        assertEquals("USER: <image>\n<image>\nWhat differs? ASSISTANT:", render(LLAVA, List.of(ChatMessage.user("What differs?", RED, BLUE))));
        // a string content becomes one text part, as vLLM gives it to such a template
        assertEquals("SYSTEM: Be brief. USER: <image>\nHi ASSISTANT:",
                render(LLAVA, List.of(ChatMessage.system("Be brief."), ChatMessage.user("Hi", RED))));
    }

    @Test
    void textOnlyConversationsRenderAsPlainMapsDid() {
        List<ChatMessage> conversation = List.of(ChatMessage.system("Be brief."), ChatMessage.user("Hi"), ChatMessage.assistant("Hello!"));
        List<Map<String, Object>> plain = conversation.stream()
                .map(m -> Map.<String, Object>of("role", m.role(), "content", m.content())).toList();
        assertEquals(STRING.render(plain, true), render(STRING, conversation));
    }

    @Test
    void mapsKeepTheirOtherKeysAndNullContentIsEmptyText() {
        Map<String, Object> call = new java.util.HashMap<>();
        call.put("role", "assistant");
        call.put("content", null);
        call.put("tool_calls", List.of(Map.of("id", "1")));
        var string = ChatContent.format(List.of(call), ContentFormat.STRING, null);
        assertEquals("", string.getFirst().get("content"));
        assertEquals(List.of(Map.of("id", "1")), string.getFirst().get("tool_calls"));
        assertEquals(List.of(), ChatContent.format(List.of(call), ContentFormat.OPENAI, null).getFirst().get("content"));
        assertEquals(2, ChatContent.countImages(List.of(ChatMessage.user("x", RED, BLUE).asTemplateValue(), call)));
    }

    @Test
    void aPartAStringTemplateCannotTakeIsRefusedNamingTheMessage() {
        var audio = Map.of("role", "user", "content", List.of(Map.of("type", "input_audio")));
        InvalidRequestException e = assertThrows(InvalidRequestException.class,
                () -> ChatContent.format(List.of(Map.of("role", "system", "content", "x"), audio), ContentFormat.STRING, new ChatContent.Placeholders(n -> "<image>", false)));
        assertTrue(e.getMessage().contains("message 1") && e.getMessage().contains("input_audio"), e.getMessage());
    }
}
