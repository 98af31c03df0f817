package dev.jvllm.models;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.jvllm.ClassificationOutput;
import dev.jvllm.InvalidRequestException;
import dev.jvllm.LLM;
import dev.jvllm.ScoringOutput;
import dev.jvllm.Task;
import dev.jvllm.pooling.ClassifierHead;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Sequence classifiers and cross-encoders (BertForSequenceClassification, XLMRobertaForSequenceClassification,
 * and decoders' Qwen2ForSequenceClassification and LlamaForSequenceClassification)
 * against Transformers' float32 logits for single inputs and pairs of segments
 * (tools/reference/make_classification_goldens.py), and a cross-encoder's scores of texts through its
 * tokenizer's pair template.
 */
class ClassificationGoldenTest {

    static final String COMMAND = "python3 tools/reference/make_classification_goldens.py --out model-zoo/src/test/resources/classification-goldens";
    private static final ObjectMapper JSON = new ObjectMapper();

    static Path root() {
        try {
            java.net.URL url = ClassificationGoldenTest.class.getResource("/classification-goldens");
            return url != null ? Path.of(url.toURI()) : Path.of("src", "test", "resources", "classification-goldens");
        } catch (java.net.URISyntaxException e) {
            throw new IllegalStateException(e);
        }
    }

    /** Each input's probabilities (softmax over 3 labels, sigmoid for 1) equal those of Transformers' logits; pairs with their token types. */
    @ParameterizedTest
    @ValueSource(strings = {"bert-classifier-tiny", "bert-cross-encoder-tiny", "xlm-roberta-cross-encoder-tiny", "qwen2-classifier-tiny",
            "llama-reward-tiny"})
    void probabilitiesAreThoseOfTransformersLogits(String name) throws IOException {
        probabilitiesMatch(name, "cpu", 2e-6f);
    }

    /** Each golden input's probabilities on {@code device} against those of Transformers' logits, within {@code tolerance}. */
    static void probabilitiesMatch(String name, String device, float tolerance) throws IOException {
        Path dir = root().resolve(name);
        assertTrue(Files.isRegularFile(dir.resolve("goldens.json")), "goldens missing; generate them on the GPU machine with: " + COMMAND);
        JsonNode goldens = JSON.readTree(dir.resolve("goldens.json").toFile());
        List<int[]> ids = new ArrayList<>(), types = new ArrayList<>();
        List<float[]> expected = new ArrayList<>();
        for (JsonNode input : goldens.get("inputs")) {
            ids.add(JSON.treeToValue(input.get("token_ids"), int[].class));
            types.add(JSON.treeToValue(input.get("token_type_ids"), int[].class));
            expected.add(ClassifierHead.probabilities(JSON.treeToValue(input.get("logits"), float[].class)));
        }
        try (LLM llm = LLM.builder().model(dir.toString()).device(device).build()) {
            assertEquals(Task.CLASSIFY, llm.task(), "a *ForSequenceClassification checkpoint classifies by default");
            List<ClassificationOutput> outputs = llm.classify(ids, types);
            for (int i = 0; i < ids.size(); i++) {
                assertArrayEquals(expected.get(i), outputs.get(i).probs(), tolerance, name + " input " + i + " on " + device);
            }
            if (name.equals("bert-classifier-tiny")) {
                assertEquals(List.of("negative", "neutral", "positive"), outputs.getFirst().labels());
                float[] p = outputs.get(3).probs();
                int best = p[0] >= p[1] && p[0] >= p[2] ? 0 : p[1] >= p[2] ? 1 : 2;
                assertEquals(outputs.get(3).labels().get(best), outputs.get(3).label());
                // The same pair read as one segment (types all 0) is another input: the types reach the model.
                float[] untyped = llm.classify(List.of(ids.get(3)), null).getFirst().probs();
                assertTrue(Math.abs(untyped[0] - p[0]) > 1e-4, "token types changed nothing");
                var refused = assertThrows(InvalidRequestException.class, () -> llm.classify(List.of(new int[]{5, 6}), List.of(new int[]{0, 2})));
                assertEquals("tokenTypes", refused.field());
            }
        }
    }

    /**
     * A cross-encoder scores a query against documents read as pairs through the tokenizer's pair template
     * ([CLS] query [SEP] document [SEP], types 0 then 1): each score is the sigmoid of the logit of that pair.
     */
    @Test
    void aCrossEncoderScoresPairsThroughItsTokenizer(@TempDir Path dir) throws IOException {
        RuntimeAssumptions.requireTokenizers();
        for (String file : List.of("config.json", "model.safetensors")) {
            Files.copy(root().resolve("bert-cross-encoder-tiny").resolve(file), dir.resolve(file));
        }
        // A tokenizer.json of BERT's WordPiece kind over 15 words, with BERT's single and pair templates.
        Files.copy(root().resolve("wordpiece-tokenizer.json"), dir.resolve("tokenizer.json"));
        try (LLM llm = LLM.builder().model(dir.toString()).device("cpu").build()) {
            List<ScoringOutput> scores = llm.score("What is the capital of France?", List.of("Paris is the capital of France.",
                    "Berlin is the capital of Germany."));
            int[] paris = {2, 12, 8, 4, 5, 6, 7, 13, 3, 9, 8, 4, 5, 6, 7, 14, 3};
            int[] berlin = {2, 12, 8, 4, 5, 6, 7, 13, 3, 10, 8, 4, 5, 6, 11, 14, 3};
            int[] types = new int[paris.length];
            for (int i = 9; i < types.length; i++) types[i] = 1;
            List<ClassificationOutput> direct = llm.classify(List.of(paris, berlin), List.of(types, types));
            assertEquals(direct.get(0).probs()[0], scores.get(0).score(), 1e-7);
            assertEquals(direct.get(1).probs()[0], scores.get(1).score(), 1e-7);
            assertEquals(paris.length, scores.get(0).promptTokens());
            assertThrows(InvalidRequestException.class, () -> llm.embed("x"), "a classifier built for CLASSIFY does not embed");
            // classify(text) reads one text with the single-text template.
            assertEquals(1, llm.classify("Paris").probs().length);
        }
    }
}
