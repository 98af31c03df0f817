package dev.jvllm.tokenizer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

class IncrementalDetokenizerTest {

    /** Texts whose tokens split characters, spaces and markers in awkward places. */
    static final List<String> TRICKY_TEXTS = List.of(
            "Hello, world!",
            " leading space",
            "  two leading spaces and   multiple    inner spaces   ",
            "line one\nline two\n\n\tindented\r\nwindows",
            "I ❤️ 🦙 and 👨‍👩‍👧‍👦 families 🎉🎉🎉",
            "你好，世界！日本語のテキスト。한국어 문장.",
            "e\u0301 a\u0308 n\u0303 cafe\u0301 Z\u0335\u0321a\u0336l\u0337g\u0338o",
            "مرحبا بالعالم שלום नमस्ते สวัสดี",
            "∑∫√∞ ≠ ≤ ≥ ½ → ⇒ 𝔘𝔫𝔦𝔠𝔬𝔡𝔢",
            "zero\u200bwidth\u200cjoiner\u200d and nbsp\u00a0here",
            "<|im_start|>user\nhi<|im_end|> <s> </s> <bos>",
            "def f(x):\n    return x ** 2  # 🐍\n");

    static Stream<Arguments> tokenizersAndTexts() {
        List<Arguments> cases = new ArrayList<>();
        for (String name : List.of("qwen3", "deepseek_v3", "llama2", "gemma3")) {
            for (String text : TRICKY_TEXTS) {
                cases.add(Arguments.of(name, text));
            }
        }
        return cases.stream();
    }

    @ParameterizedTest(name = "{0}: {1}")
    @MethodSource("tokenizersAndTexts")
    void concatenatedDeltasEqualFullDecode(String name, String text) {
        HfTokenizer tokenizer = Tokenizers.get(name);
        for (boolean skipSpecial : new boolean[] {false, true}) {
            int[] ids = tokenizer.encode(text, true);
            IncrementalDetokenizer detokenizer = new IncrementalDetokenizer(tokenizer, skipSpecial);
            StringBuilder streamed = new StringBuilder();
            for (int id : ids) {
                String delta = detokenizer.accept(id);
                assertFalse(delta.contains("\uFFFD"), "delta with U+FFFD for " + Arrays.toString(ids));
                streamed.append(delta);
            }
            streamed.append(detokenizer.flush());
            assertEquals(tokenizer.decode(ids, skipSpecial), streamed.toString(), "skipSpecialTokens=" + skipSpecial);
        }
    }

    @ParameterizedTest(name = "{0}: {1}")
    @MethodSource("tokenizersAndTexts")
    void deltasAfterAPromptContinueItsText(String name, String text) {
        HfTokenizer tokenizer = Tokenizers.get(name);
        int[] prompt = tokenizer.encode("Question: what is this?\nAnswer:", true);
        int[] generated = tokenizer.encode(" " + text, false);
        int[] all = concat(prompt, generated);
        IncrementalDetokenizer detokenizer = new IncrementalDetokenizer(tokenizer, prompt, false);
        StringBuilder streamed = new StringBuilder();
        for (int id : generated) {
            streamed.append(detokenizer.accept(id));
        }
        streamed.append(detokenizer.flush());
        String promptText = tokenizer.decode(prompt, false);
        String fullText = tokenizer.decode(all, false);
        assertTrue(fullText.startsWith(promptText));
        assertEquals(fullText.substring(promptText.length()), streamed.toString());
    }

    @Test
    void emitsNothingUntilAMultiByteCharacterIsComplete() {
        HfTokenizer qwen3 = Tokenizers.get("qwen3");
        // 🦙 is four UTF-8 bytes; in byte-level BPE each byte can be its own token.
        byte[] utf8 = "🦙".getBytes(java.nio.charset.StandardCharsets.UTF_8);
        int[] byteTokens = new int[utf8.length];
        for (int i = 0; i < utf8.length; i++) {
            byteTokens[i] = qwen3.idOf(byteLevelSymbol(utf8[i] & 0xff)).getAsInt();
        }
        IncrementalDetokenizer detokenizer = new IncrementalDetokenizer(qwen3, true);
        assertEquals("a", detokenizer.accept(qwen3.idOf("a").getAsInt()));
        assertEquals("", detokenizer.accept(byteTokens[0]));
        assertEquals("", detokenizer.accept(byteTokens[1]));
        assertEquals("", detokenizer.accept(byteTokens[2]));
        assertEquals("🦙", detokenizer.accept(byteTokens[3]));
    }

    @Test
    void flushShowsAnUnfinishedCharacterAsDecodeDoes() {
        HfTokenizer qwen3 = Tokenizers.get("qwen3");
        int firstByteOfLlama = qwen3.idOf(byteLevelSymbol(0xF0)).getAsInt();
        IncrementalDetokenizer detokenizer = new IncrementalDetokenizer(qwen3, true);
        assertEquals("", detokenizer.accept(firstByteOfLlama));
        assertEquals(qwen3.decode(new int[] {firstByteOfLlama}, true), detokenizer.flush());
    }

    @Test
    void sentencePieceKeepsTheSpaceOfAWordAfterThePrompt() {
        HfTokenizer llama2 = Tokenizers.get("llama2");
        int[] prompt = llama2.encode("Hello", true);
        IncrementalDetokenizer detokenizer = new IncrementalDetokenizer(llama2, prompt, true);
        assertEquals(" world", detokenizer.accept(llama2.idOf("▁world").getAsInt()));
    }

    /** GPT-2's byte-to-unicode table: printable Latin-1 bytes map to themselves, others shift to 256+. */
    static String byteLevelSymbol(int b) {
        boolean printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
        if (printable) {
            return Character.toString(b);
        }
        int shifted = 0;
        for (int x = 0; x < b; x++) {
            boolean p = (x >= '!' && x <= '~') || (x >= 0xA1 && x <= 0xAC) || (x >= 0xAE && x <= 0xFF);
            if (!p) {
                shifted++;
            }
        }
        return Character.toString(256 + shifted);
    }

    private static int[] concat(int[] a, int[] b) {
        int[] r = Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, r, a.length, b.length);
        return r;
    }
}
