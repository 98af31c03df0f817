package dev.jvllm.tokenizer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jvllm.tokenizer.ChatTemplateException.Reason;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Checks on the six real tokenizers that need no reference output: long prompts survive, text
 * round-trips, and every real chat template renders the usual conversations. Formats that are
 * documented by the model authors are checked verbatim; everything else is compared byte for byte
 * with transformers in {@link TransformersReferenceTest}.
 */
class RealTokenizersTest {

    private static final Map<String, Object> SYSTEM = Map.of("role", "system", "content", "You are a helpful assistant.");
    private static final Map<String, Object> USER = Map.of("role", "user", "content", "What is the capital of France?");
    private static final Map<String, Object> ASSISTANT = Map.of("role", "assistant", "content", "Paris.");
    private static final Map<String, Object> USER_AGAIN = Map.of("role", "user", "content", "And of Japan?");

    @ParameterizedTest
    @ValueSource(strings = {"llama2", "llama3", "llama3_1", "qwen3", "deepseek_v3", "gemma3"})
    void promptOfThousandsOfTokensIsNotTruncatedAndRoundTrips(String name) {
        HfTokenizer tokenizer = Tokenizers.get(name);
        String text = "The quick brown fox jumps over the lazy dog, été 🦙 42. ".repeat(120);
        int[] ids = tokenizer.encode(text, false);
        assertTrue(ids.length > 2000, name + " gave only " + ids.length + " tokens");
        assertEquals(text, tokenizer.decode(ids, true));
    }

    @ParameterizedTest
    @ValueSource(strings = {"llama2", "llama3", "llama3_1", "qwen3", "deepseek_v3", "gemma3"})
    void eachTokensBytesSpellItsShareOfTheText(String name) {
        // What structured outputs match tokens by: byte-level entries through GPT-2's byte map,
        // SentencePiece's ▁ as a space and <0xHH> as that byte; special tokens have none.
        HfTokenizer tokenizer = Tokenizers.get(name);
        String text = "{\"name\": \"Zoë\", \"tags\": [\"été\", \"🦙\"], \"n\": 42}\n";
        java.io.ByteArrayOutputStream spelled = new java.io.ByteArrayOutputStream();
        for (int id : tokenizer.encode(text, false)) spelled.writeBytes(tokenizer.tokenBytes(id));
        String joined = spelled.toString(java.nio.charset.StandardCharsets.UTF_8);
        assertTrue(joined.equals(text) || joined.equals(" " + text), name + " spelled '" + joined + "'");
        for (int special : tokenizer.specialTokenIds()) assertEquals(null, tokenizer.tokenBytes(special), name + " special " + special);
    }

    @ParameterizedTest
    @ValueSource(strings = {"llama2", "llama3", "llama3_1", "qwen3", "deepseek_v3", "gemma3"})
    void addingSpecialTokensAddsOnlyABosAtTheStart(String name) {
        HfTokenizer tokenizer = Tokenizers.get(name);
        int[] plain = tokenizer.encode("Hello world", false);
        int[] withSpecial = tokenizer.encode("Hello world", true);
        int added = withSpecial.length - plain.length;
        assertTrue(added == 0 || added == 1, name + " added " + added + " tokens");
        if (added == 1) {
            assertEquals(tokenizer.bosTokenId().getAsInt(), withSpecial[0], name);
        }
        assertEquals("Hello world", tokenizer.decode(withSpecial, true));
    }

    @ParameterizedTest
    @ValueSource(strings = {"llama3", "llama3_1", "qwen3", "deepseek_v3", "gemma3"})
    void realTemplatesRenderUsualConversations(String name) {
        ChatTemplate template = Tokenizers.get(name).chatTemplate().orElseThrow();
        List<List<Map<String, Object>>> conversations = List.of(
                List.of(USER), List.of(SYSTEM, USER), List.of(SYSTEM, USER, ASSISTANT, USER_AGAIN), List.of(SYSTEM, USER, ASSISTANT));
        for (List<Map<String, Object>> conversation : conversations) {
            for (boolean generationPrompt : new boolean[] {true, false}) {
                String prompt = template.render(conversation, generationPrompt);
                for (Map<String, Object> message : conversation) {
                    assertTrue(prompt.contains((String) message.get("content")), name + " lost a message: " + prompt);
                }
            }
        }
    }

    @Test
    void llama2HasNoChatTemplate() {
        assertTrue(Tokenizers.get("llama2").chatTemplate().isEmpty());
    }

    @Test
    void qwen3TemplateProducesChatMl() {
        String prompt = Tokenizers.get("qwen3").chatTemplate().orElseThrow().render(List.of(SYSTEM, USER), true);
        assertEquals("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
                + "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n", prompt);
    }

    @Test
    void qwen3TemplateHonoursEnableThinking() {
        String prompt = Tokenizers.get("qwen3").chatTemplate().orElseThrow()
                .render(List.of(USER), true, Map.of("enable_thinking", false));
        assertTrue(prompt.endsWith("<|im_start|>assistant\n<think>\n\n</think>\n\n"), prompt);
    }

    @Test
    void llama31TemplateProducesHeaderTurns() {
        String prompt = Tokenizers.get("llama3_1").chatTemplate().orElseThrow().render(List.of(SYSTEM, USER), true);
        assertEquals("<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou are a helpful assistant.<|eot_id|>"
                + "<|start_header_id|>user<|end_header_id|>\n\nWhat is the capital of France?<|eot_id|>"
                + "<|start_header_id|>assistant<|end_header_id|>\n\n", prompt);
    }

    @Test
    void deepSeekV3TemplateProducesItsMarkers() {
        String prompt = Tokenizers.get("deepseek_v3").chatTemplate().orElseThrow().render(List.of(SYSTEM, USER, ASSISTANT, USER_AGAIN), true);
        assertEquals("<｜begin▁of▁sentence｜>You are a helpful assistant.<｜User｜>What is the capital of France?"
                + "<｜Assistant｜>Paris.<｜end▁of▁sentence｜><｜User｜>And of Japan?<｜Assistant｜>", prompt);
    }

    @Test
    void gemma3TemplateFoldsTheSystemPromptIntoTheFirstTurn() {
        String prompt = Tokenizers.get("gemma3").chatTemplate().orElseThrow().render(List.of(SYSTEM, USER), true);
        assertEquals("<bos><start_of_turn>user\nYou are a helpful assistant.\n\nWhat is the capital of France?<end_of_turn>\n"
                + "<start_of_turn>model\n", prompt);
    }

    @Test
    void gemma3TemplateRejectsRolesOutOfOrder() {
        ChatTemplate template = Tokenizers.get("gemma3").chatTemplate().orElseThrow();
        ChatTemplateException e = assertThrows(ChatTemplateException.class, () -> template.render(List.of(USER, USER_AGAIN), true));
        assertEquals(Reason.RAISED_BY_TEMPLATE, e.reason());
        assertTrue(e.getMessage().contains("alternate"), e.getMessage());
    }
}
