package dev.jvllm.examples;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.jvllm.LLM;
import dev.jvllm.Logprob;
import dev.jvllm.Prompt;
import dev.jvllm.RequestOutput;
import dev.jvllm.SamplingParams;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The shipped demo model (models/jvllm-demo) against the references its training run recorded with
 * Transformers: greedy tokens, held-out perplexity, and text made of real words.
 */
class DemoModelTest {

    private static final Path MODEL = Path.of("..", "models", "jvllm-demo");
    private static JsonNode references;
    private static LLM llm;

    @BeforeAll
    static void load() throws IOException {
        references = new ObjectMapper().readTree(MODEL.resolve("training/references.json").toFile());
        llm = LLM.builder().model(MODEL.toString()).seed(0).build();
    }

    @AfterAll
    static void close() {
        if (llm != null) llm.close();
    }

    @Test
    void greedyTokensEqualTransformers() {
        SamplingParams greedy = SamplingParams.builder().temperature(0).ignoreEos(true).maxTokens(24).build();
        for (JsonNode ref : references.get("greedy")) {
            int[] prompt = ints(ref.get("prompt_token_ids"));
            assertArrayEquals(prompt, llm.tokenizer().encode(ref.get("prompt").asText(), true),
                    "tokenization of '" + ref.get("prompt").asText() + "'");
            RequestOutput out = llm.generate(prompt, greedy);
            assertArrayEquals(ints(ref.get("greedy_token_ids")), out.outputs().getFirst().tokenIdArray(),
                    "greedy continuation of '" + ref.get("prompt").asText() + "'");
            assertEquals(ref.get("text").asText(), out.text());
        }
    }

    @Test
    void heldOutPerplexityMatchesTheRecordedOneWithinOnePercent() {
        int[] heldOut = ints(references.get("heldout_token_ids"));
        int window = references.get("heldout_window").asInt();
        List<Prompt> windows = new ArrayList<>();
        for (int start = 0; start + 1 < heldOut.length; start += window) {
            int end = Math.min(heldOut.length, start + window + 1);
            windows.add(Prompt.tokens(java.util.Arrays.copyOfRange(heldOut, start, end)));
        }
        SamplingParams scoring = SamplingParams.builder().temperature(0).maxTokens(1).promptLogprobs(0).build();
        double nll = 0;
        int scored = 0;
        for (RequestOutput out : llm.generatePrompts(windows, scoring)) {
            List<Map<Integer, Logprob>> logprobs = out.promptLogprobs();
            for (int i = 1; i < logprobs.size(); i++) {
                nll -= logprobs.get(i).get(out.promptTokenIds().get(i)).logprob();
                scored++;
            }
        }
        assertEquals(references.get("heldout_tokens_scored").asInt(), scored);
        double perplexity = Math.exp(nll / scored);
        double recorded = references.get("heldout_perplexity").asDouble();
        assertEquals(recorded, perplexity, recorded * 0.01, "held-out perplexity");
    }

    @Test
    void sampledTextIsMadeOfRealWords() throws IOException {
        Set<String> vocabulary = new HashSet<>(Files.readAllLines(MODEL.resolve("training/vocabulary.txt")));
        SamplingParams readmeDefaults = SamplingParams.builder().temperature(0.8).topP(0.95).maxTokens(64).seed(7L).build();
        int words = 0, known = 0;
        for (RequestOutput out : llm.generate(List.of("The European Parliament", "Mr President, I would like to",
                "The Commission has"), readmeDefaults)) {
            Matcher m = Pattern.compile("[a-z]+").matcher(out.text().toLowerCase(java.util.Locale.ROOT));
            while (m.find()) {
                words++;
                if (vocabulary.contains(m.group())) known++;
            }
        }
        assertTrue(words >= 60, "expected a few sentences of text, got " + words + " words");
        assertTrue(known >= 0.9 * words, known + " of " + words + " generated words appear in the training corpus");
    }

    @Test
    void chatRendersTheModelsTemplateAndAnswers() {
        List<dev.jvllm.ChatMessage> conversation = List.of(dev.jvllm.ChatMessage.user("What is the Commission doing?"));
        assertEquals("<|user|>\nWhat is the Commission doing?</s>\n<|assistant|>\n", llm.renderChat(conversation));
        RequestOutput reply = llm.chat(conversation, SamplingParams.builder().temperature(0).maxTokens(12).build());
        assertEquals(llm.renderChat(conversation), reply.prompt());
        assertTrue(reply.outputs().getFirst().tokenIds().size() > 0);
    }

    private static int[] ints(JsonNode array) {
        int[] out = new int[array.size()];
        for (int i = 0; i < out.length; i++) out[i] = array.get(i).asInt();
        return out;
    }
}
