package dev.jvllm.tokenizer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import com.fasterxml.jackson.core.type.TypeReference;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.StreamSupport;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Compares jvllm with Hugging Face's own libraries on the cases of
 * {@code tools/reference/tokenizer_cases.json}: ids, tokens, decoded text, streaming and chat
 * prompts must equal what {@code transformers} produced in
 * {@code src/test/resources/tokenizers/expected.json} (written by
 * {@code tools/reference/tokenizer_expected.py}).
 */
class TransformersReferenceTest {

    private static final String EXPECTED = "/tokenizers/expected.json";
    private static final ObjectMapper JSON = new ObjectMapper();
    private static JsonNode expected;

    static synchronized JsonNode expected() {
        if (expected == null) {
            try (InputStream in = TransformersReferenceTest.class.getResourceAsStream(EXPECTED)) {
                if (in == null) {
                    fail("tokenizer/src/test/resources" + EXPECTED + " is missing. Generate it with transformers on a machine "
                            + "that has it: tools/reference/fetch_tokenizers.sh DIR, then python3 tools/reference/tokenizer_expected.py "
                            + "--tokenizers DIR --cases tools/reference/tokenizer_cases.json --out tokenizer/src/test/resources"
                            + EXPECTED);
                }
                expected = JSON.readTree(in);
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }
        return expected;
    }

    static List<String> names() {
        return ReferenceTokenizers.ALL;
    }

    private static JsonNode reference(String name) {
        JsonNode entry = expected().path("tokenizers").path(name);
        if (entry.isMissingNode()) {
            fail(EXPECTED + " has no entry for " + name + " (did tokenizer_expected.py fail for it?)");
        }
        return entry;
    }

    private static Map<String, JsonNode> casesByName(String kind) {
        Map<String, JsonNode> cases = new HashMap<>();
        for (JsonNode c : expected().path("cases").path(kind)) {
            cases.put(c.path("name").asText(), c);
        }
        return cases;
    }

    private static String text(JsonNode textCase) {
        return textCase.path("text").asText().repeat(textCase.path("repeat").asInt(1));
    }

    private static int[] ints(JsonNode array) {
        return StreamSupport.stream(array.spliterator(), false).mapToInt(JsonNode::asInt).toArray();
    }

    private static void assertNoMismatches(String name, List<String> mismatches, int checked) {
        assertTrue(checked > 0, "no cases checked for " + name);
        if (!mismatches.isEmpty()) {
            fail(name + ": " + mismatches.size() + " of " + checked + " differ from transformers:\n  " + String.join("\n  ", mismatches));
        }
    }

    private static String describe(String caseName, String what, int[] expectedIds, int[] actualIds) {
        int at = Arrays.mismatch(expectedIds, actualIds);
        return caseName + " " + what + ": first difference at index " + at + " (expected " + expectedIds.length + " ids "
                + Arrays.toString(Arrays.copyOfRange(expectedIds, Math.max(0, at - 2), Math.min(expectedIds.length, at + 3)))
                + ", got " + actualIds.length + " ids "
                + Arrays.toString(Arrays.copyOfRange(actualIds, Math.max(0, at - 2), Math.min(actualIds.length, at + 3))) + ")";
    }

    @ParameterizedTest
    @MethodSource("names")
    void encodingMatchesTransformers(String name) {
        HfTokenizer tokenizer = Tokenizers.get(name);
        Map<String, JsonNode> cases = casesByName("texts");
        List<String> mismatches = new ArrayList<>();
        int checked = 0;
        for (JsonNode ref : reference(name).path("texts")) {
            String caseName = ref.path("name").asText();
            String text = text(cases.get(caseName));
            int[] withSpecial = expectedWithSpecialTokens(name, tokenizer, ints(ref.path("ids_with_special")));
            int[] withoutSpecial = ints(ref.path("ids_without_special"));
            int[] actualWith = tokenizer.encode(text, true);
            int[] actualWithout = tokenizer.encode(text, false);
            if (!Arrays.equals(withSpecial, actualWith)) {
                mismatches.add(describe(caseName, "with special tokens", withSpecial, actualWith));
            }
            if (!Arrays.equals(withoutSpecial, actualWithout)) {
                mismatches.add(describe(caseName, "without special tokens", withoutSpecial, actualWithout));
            }
            checked++;
        }
        assertNoMismatches(name, mismatches, checked);
    }

    /**
     * Transformers 5 loads DeepSeek-V3's tokenizer with the wrong class (transformers#45488), so the
     * reference was made with the plain {@code PreTrainedTokenizerFast}, which ignores
     * tokenizer_config.json's {@code add_bos_token}. jvllm honours it, as Transformers 4's
     * LlamaTokenizerFast (the class the model was published with) does: the reference gains the BOS.
     */
    private static int[] expectedWithSpecialTokens(String name, HfTokenizer tokenizer, int[] reference) {
        boolean fallbackLoader = reference(name).path("loader").asText().equals("PreTrainedTokenizerFast");
        int bos = tokenizer.bosTokenId().orElse(-1);
        int[] withoutSpecial = tokenizer.encode("", true);
        boolean addsBos = withoutSpecial.length == 1 && withoutSpecial[0] == bos;
        if (!fallbackLoader || !addsBos || (reference.length > 0 && reference[0] == bos)) return reference;
        int[] withBos = new int[reference.length + 1];
        withBos[0] = bos;
        System.arraycopy(reference, 0, withBos, 1, reference.length);
        return withBos;
    }

    @ParameterizedTest
    @MethodSource("names")
    void decodingMatchesTransformers(String name) {
        HfTokenizer tokenizer = Tokenizers.get(name);
        List<String> mismatches = new ArrayList<>();
        int checked = 0;
        for (JsonNode ref : reference(name).path("texts")) {
            int[] ids = ints(ref.path("ids_with_special"));
            String keep = tokenizer.decode(ids, false);
            String skip = tokenizer.decode(ids, true);
            if (!keep.equals(ref.path("decoded_with_special").asText())) {
                mismatches.add(ref.path("name").asText() + " with special tokens: expected "
                        + JSON.valueToTree(ref.path("decoded_with_special").asText()) + ", got " + JSON.valueToTree(keep));
            }
            if (!skip.equals(ref.path("decoded_skip_special").asText())) {
                mismatches.add(ref.path("name").asText() + " skipping special tokens: expected "
                        + JSON.valueToTree(ref.path("decoded_skip_special").asText()) + ", got " + JSON.valueToTree(skip));
            }
            checked++;
        }
        assertNoMismatches(name, mismatches, checked);
    }

    @ParameterizedTest
    @MethodSource("names")
    void streamedTextMatchesTransformersDecode(String name) {
        HfTokenizer tokenizer = Tokenizers.get(name);
        List<String> mismatches = new ArrayList<>();
        int checked = 0;
        for (JsonNode ref : reference(name).path("texts")) {
            IncrementalDetokenizer detokenizer = new IncrementalDetokenizer(tokenizer, true);
            StringBuilder streamed = new StringBuilder();
            for (int id : ints(ref.path("ids_with_special"))) {
                streamed.append(detokenizer.accept(id));
            }
            streamed.append(detokenizer.flush());
            if (!streamed.toString().equals(ref.path("decoded_skip_special").asText())) {
                mismatches.add(ref.path("name").asText() + ": streamed " + JSON.valueToTree(streamed.toString()));
            }
            checked++;
        }
        assertNoMismatches(name, mismatches, checked);
    }

    @ParameterizedTest
    @MethodSource("names")
    void tokenStringsMatchTransformers(String name) {
        HfTokenizer tokenizer = Tokenizers.get(name);
        List<String> mismatches = new ArrayList<>();
        int checked = 0;
        for (JsonNode ref : reference(name).path("texts")) {
            int[] ids = ints(ref.path("ids_without_special"));
            List<String> tokens = JSON.convertValue(ref.path("tokens_without_special"), new TypeReference<List<String>>() {});
            for (int i = 0; i < ids.length; i++) {
                if (!tokens.get(i).equals(tokenizer.tokenText(ids[i]))) {
                    mismatches.add(ref.path("name").asText() + " id " + ids[i] + ": expected " + tokens.get(i) + ", got " + tokenizer.tokenText(ids[i]));
                }
                checked++;
            }
        }
        assertNoMismatches(name, mismatches, checked);
    }

    @ParameterizedTest
    @MethodSource("names")
    void vocabularySizeAndBosEosMatchTransformers(String name) {
        HfTokenizer tokenizer = Tokenizers.get(name);
        JsonNode ref = reference(name);
        assertEquals(ref.path("vocab_size").asInt(), tokenizer.vocabSize(), "len(tokenizer)");
        assertEquals(ref.path("bos_token_id").isNull() ? "none" : ref.path("bos_token_id").asText(),
                tokenizer.bosTokenId().isPresent() ? String.valueOf(tokenizer.bosTokenId().getAsInt()) : "none", "bos_token_id");
        assertEquals(ref.path("eos_token_id").isNull() ? "none" : ref.path("eos_token_id").asText(),
                tokenizer.eosTokenId().isPresent() ? String.valueOf(tokenizer.eosTokenId().getAsInt()) : "none", "eos_token_id");
        assertEquals(ref.path("has_chat_template").asBoolean(), tokenizer.chatTemplate().isPresent(), "has a chat template");
    }

    @ParameterizedTest
    @MethodSource("names")
    void chatPromptsAreByteIdenticalToApplyChatTemplate(String name) {
        HfTokenizer tokenizer = Tokenizers.get(name);
        Map<String, JsonNode> cases = casesByName("chats");
        List<String> mismatches = new ArrayList<>();
        int checked = 0;
        for (JsonNode ref : reference(name).path("chats")) {
            String caseName = ref.path("name").asText();
            JsonNode chat = cases.get(caseName);
            List<Map<String, Object>> messages = JSON.convertValue(chat.path("messages"), new TypeReference<>() {});
            Map<String, Object> variables = chat.has("variables")
                    ? JSON.convertValue(chat.path("variables"), new TypeReference<Map<String, Object>>() {})
                    : Map.of();
            ChatTemplate template = tokenizer.chatTemplate().orElseThrow();
            checked++;
            String rendered;
            try {
                rendered = template.render(messages, chat.path("add_generation_prompt").asBoolean(), variables);
            } catch (ChatTemplateException e) {
                if (!ref.has("error")) {
                    mismatches.add(caseName + ": transformers rendered it, jvllm failed: " + e.getMessage());
                }
                continue;
            }
            if (ref.has("error")) {
                mismatches.add(caseName + ": transformers raised " + ref.path("error").asText() + ", jvllm rendered " + JSON.valueToTree(rendered));
            } else if (!rendered.equals(ref.path("prompt").asText())) {
                mismatches.add(caseName + ": expected " + JSON.valueToTree(ref.path("prompt").asText()) + "\n      got " + JSON.valueToTree(rendered));
            }
        }
        if (!reference(name).path("has_chat_template").asBoolean()) {
            return;
        }
        assertNoMismatches(name, mismatches, checked);
    }
}
