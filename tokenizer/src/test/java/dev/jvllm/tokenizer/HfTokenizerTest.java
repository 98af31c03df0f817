package dev.jvllm.tokenizer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.OptionalInt;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class HfTokenizerTest {

    private static HfTokenizer qwen3;
    private static HfTokenizer deepseek;

    @BeforeAll
    static void load() {
        qwen3 = Tokenizers.get("qwen3");
        deepseek = Tokenizers.get("deepseek_v3");
    }

    @Test
    void missingTokenizerJsonFailsNamingTheFile(@TempDir Path dir) {
        TokenizerException e = assertThrows(TokenizerException.class, () -> HfTokenizer.load(dir));
        assertTrue(e.getMessage().contains(dir.resolve("tokenizer.json").toString()), e.getMessage());
    }

    @Test
    void malformedTokenizerJsonFailsNamingTheFile(@TempDir Path dir) throws IOException {
        Files.writeString(dir.resolve("tokenizer.json"), "{\"model\": {\"vocab\": ");
        TokenizerException e = assertThrows(TokenizerException.class, () -> HfTokenizer.load(dir));
        assertTrue(e.getMessage().contains(dir.resolve("tokenizer.json").toString()), e.getMessage());
    }

    @Test
    void jsonThatIsNotATokenizerFailsNamingTheFile(@TempDir Path dir) throws IOException {
        Files.writeString(dir.resolve("tokenizer.json"), "{\"hello\": 1}");
        TokenizerException e = assertThrows(TokenizerException.class, () -> HfTokenizer.load(dir));
        assertTrue(e.getMessage().contains(dir.resolve("tokenizer.json").toString()), e.getMessage());
    }

    @Test
    void tokenizerLoadedInBackgroundEncodesAndDecodesAsLoadedInFull(@TempDir Path dir) throws IOException {
        Files.copy(ReferenceTokenizers.directory("qwen3").resolve("tokenizer.json"), dir.resolve("tokenizer.json"));
        try (HfTokenizer tokenizer = HfTokenizer.loadBuildingInBackground(dir)) {
            assertEquals(qwen3.vocabSize(), tokenizer.vocabSize());
            int[] ids = tokenizer.encode("Hello world, again", false);
            assertArrayEquals(qwen3.encode("Hello world, again", false), ids);
            assertEquals("Hello world, again", tokenizer.decode(ids, false));
        }
    }

    @Test
    void tokenizerJsonTheNativeLibraryRejectsFailsAtFirstEncodeWhenLoadedInBackground(@TempDir Path dir) throws IOException {
        // A readable vocabulary in a model DJL's tokenizers does not know.
        Files.writeString(dir.resolve("tokenizer.json"), "{\"model\": {\"type\": \"NoSuchModel\", \"vocab\": {\"a\": 0}}}");
        try (HfTokenizer tokenizer = HfTokenizer.loadBuildingInBackground(dir)) {
            assertEquals(1, tokenizer.vocabSize());
            TokenizerException e = assertThrows(TokenizerException.class, () -> tokenizer.encode("a", false));
            assertTrue(e.getMessage().contains(dir.resolve("tokenizer.json").toString()), e.getMessage());
            assertThrows(TokenizerException.class, tokenizer::awaitNativeBuild);
        }
        assertThrows(TokenizerException.class, () -> HfTokenizer.load(dir));
    }

    @Test
    void malformedTokenizerConfigFailsNamingTheFile(@TempDir Path dir) throws IOException {
        Files.copy(ReferenceTokenizers.directory("qwen3").resolve("tokenizer.json"), dir.resolve("tokenizer.json"));
        Files.writeString(dir.resolve("tokenizer_config.json"), "{\"bos_token\": [1, 2]}");
        TokenizerException e = assertThrows(TokenizerException.class, () -> HfTokenizer.load(dir));
        assertTrue(e.getMessage().contains("tokenizer_config.json"), e.getMessage());
    }

    @Test
    void brokenChatTemplateFailsOnlyWhenTheTemplateIsAskedFor(@TempDir Path dir) throws IOException {
        Files.copy(ReferenceTokenizers.directory("qwen3").resolve("tokenizer.json"), dir.resolve("tokenizer.json"));
        Files.writeString(dir.resolve("tokenizer_config.json"), "{\"eos_token\": \"<|im_end|>\", \"chat_template\": \"{% if %}\"}");
        try (HfTokenizer tokenizer = HfTokenizer.load(dir)) {
            assertEquals("Hello", tokenizer.decode(tokenizer.encode("Hello", false), false));
            ChatTemplateException e = assertThrows(ChatTemplateException.class, tokenizer::chatTemplate);
            assertEquals(ChatTemplateException.Reason.SYNTAX, e.reason());
            assertTrue(e.getMessage().contains(dir.resolve("tokenizer_config.json").toString()), e.getMessage());
        }
    }

    @Test
    void worksWithoutTokenizerConfig(@TempDir Path dir) throws IOException {
        Files.copy(ReferenceTokenizers.directory("qwen3").resolve("tokenizer.json"), dir.resolve("tokenizer.json"));
        try (HfTokenizer tokenizer = HfTokenizer.load(dir)) {
            assertEquals("Hello world", tokenizer.decode(tokenizer.encode("Hello world", true), false));
            assertTrue(tokenizer.chatTemplate().isEmpty());
            assertTrue(tokenizer.eosTokenId().isEmpty());
        }
    }

    @Test
    void promptLongerThan512TokensIsNotTruncated() {
        String text = "The quick brown fox jumps over the lazy dog. ".repeat(200);
        int[] ids = qwen3.encode(text, true);
        assertTrue(ids.length > 1500, "got only " + ids.length + " tokens");
        assertEquals(text, qwen3.decode(ids, false));
    }

    @Test
    void asciiTextEncodesToByteLevelTokens() {
        int[] ids = qwen3.encode("Hello world", false);
        String[] tokens = Arrays.stream(ids).mapToObj(qwen3::tokenText).toArray(String[]::new);
        assertArrayEquals(new String[] {"Hello", "Ġworld"}, tokens);
        assertEquals(OptionalInt.of(ids[1]), qwen3.idOf("Ġworld"));
    }

    @Test
    void specialTokensWrittenInTextEncodeAsSingleTokens() {
        int[] ids = qwen3.encode("<|im_start|>user", false);
        assertEquals(qwen3.idOf("<|im_start|>").getAsInt(), ids[0]);
        assertTrue(qwen3.specialTokenIds().contains(ids[0]));
    }

    @Test
    void eosComesFromTokenizerConfig() {
        assertEquals(qwen3.idOf("<|im_end|>"), qwen3.eosTokenId());
        assertTrue(qwen3.bosTokenId().isEmpty(), "Qwen3's bos_token is null");
    }

    @Test
    void bosAndEosWrittenAsAddedTokenObjectsAreRead() {
        assertEquals(deepseek.idOf("<｜begin▁of▁sentence｜>"), deepseek.bosTokenId());
        assertEquals(deepseek.idOf("<｜end▁of▁sentence｜>"), deepseek.eosTokenId());
    }

    @Test
    void addBosTokenInConfigPrependsBosWhenAddingSpecialTokens() {
        int[] plain = deepseek.encode("Hello", false);
        int[] withSpecial = deepseek.encode("Hello", true);
        assertEquals(deepseek.bosTokenId().getAsInt(), withSpecial[0]);
        assertArrayEquals(plain, Arrays.copyOfRange(withSpecial, 1, withSpecial.length));
    }

    @Test
    void decodeCanSkipSpecialTokens() {
        int[] ids = qwen3.encode("<|im_start|>assistant\nHi<|im_end|>", false);
        assertEquals("<|im_start|>assistant\nHi<|im_end|>", qwen3.decode(ids, false));
        assertEquals("assistant\nHi", qwen3.decode(ids, true));
    }

    @Test
    void decodeKeepsSpacesBeforePunctuation() {
        String text = "Hello , world ! I 'm here";
        assertEquals(text, qwen3.decode(qwen3.encode(text, false), true));
    }

    @Test
    void vocabSizeCountsAddedTokens() {
        // 151,643 BPE entries + 26 added tokens, the last of which is </think>
        assertEquals(151669, qwen3.vocabSize());
        assertEquals("</think>", qwen3.tokenText(qwen3.vocabSize() - 1));
    }

    @Test
    void vocabularyIsReadWhateverTheOrderOfKeys(@TempDir Path dir) throws IOException {
        // Hugging Face writes added_tokens first and the merges after the vocabulary; a file written
        // the other way round must give the same vocabulary.
        ObjectMapper json = new ObjectMapper();
        ObjectNode original = (ObjectNode) json.readTree(ReferenceTokenizers.directory("qwen3").resolve("tokenizer.json").toFile());
        ObjectNode model = (ObjectNode) original.get("model");
        ObjectNode reorderedModel = json.createObjectNode();
        reorderedModel.set("merges", model.get("merges"));
        model.properties().forEach(e -> reorderedModel.set(e.getKey(), e.getValue()));
        ObjectNode reordered = json.createObjectNode();
        reordered.set("model", reorderedModel);
        original.properties().forEach(e -> reordered.set(e.getKey(), e.getValue()));
        reordered.set("added_tokens", reordered.remove("added_tokens"));
        json.writeValue(dir.resolve("tokenizer.json").toFile(), reordered);
        try (HfTokenizer tokenizer = HfTokenizer.load(dir)) {
            assertEquals(qwen3.vocabSize(), tokenizer.vocabSize());
            for (int id = 0; id < qwen3.vocabSize(); id++) {
                assertEquals(qwen3.tokenText(id), tokenizer.tokenText(id));
            }
            assertEquals(qwen3.specialTokenIds(), tokenizer.specialTokenIds());
            assertEquals(qwen3.idOf("<|im_start|>"), tokenizer.idOf("<|im_start|>"));
        }
    }

    @Test
    void idOutsideVocabularyIsRejected() {
        assertThrows(TokenizerException.class, () -> qwen3.decode(new int[] {qwen3.vocabSize()}, false));
        assertThrows(TokenizerException.class, () -> qwen3.tokenText(-1));
        assertFalse(qwen3.idOf("no such token ✗").isPresent());
    }

    @Test
    void chatTemplateIsReadFromTokenizerConfig() {
        assertTrue(qwen3.chatTemplate().isPresent());
        assertTrue(qwen3.chatTemplate().get().source().contains("<|im_start|>"));
    }

    @Test
    void loadingTurnsOffDjlTelemetryAndCudaDownloads() {
        if (System.getenv("OPT_OUT_TRACKING") == null) {
            assertEquals("true", System.getProperty("OPT_OUT_TRACKING"));
        }
        if (System.getenv("RUST_FLAVOR") == null) {
            assertEquals("cpu", System.getProperty("RUST_FLAVOR"));
        }
    }
}
