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
            // A document longer than the model's 128 positions is refused, or, with truncatePromptTokens, cut as
            // Hugging Face cuts a pair: the longer text loses its end (here the document keeps 118 of its 200 words).
            String longDocument = "paris ".repeat(200).strip();
            var tooLong = assertThrows(InvalidRequestException.class, () -> llm.score("What is the capital of France?", List.of(longDocument)));
            assertTrue(tooLong.getMessage().contains("128"), tooLong.getMessage());
            double cut = llm.score(List.of("What is the capital of France?"), List.of(longDocument),
                    dev.jvllm.PoolingParams.builder().truncatePromptTokens(-1).build()).getFirst().score();
            int[] cutIds = new int[128], cutTypes = new int[128];
            System.arraycopy(new int[]{2, 12, 8, 4, 5, 6, 7, 13, 3}, 0, cutIds, 0, 9);
            for (int i = 9; i < 127; i++) cutIds[i] = 9;
            cutIds[127] = 3;
            for (int i = 9; i < 128; i++) cutTypes[i] = 1;
            assertEquals(llm.classify(List.of(cutIds), List.of(cutTypes)).getFirst().probs()[0], cut, 1e-7);
        }
    }

    /** A copy of a golden checkpoint, its config.json changed by {@code edit}, with the WordPiece tokenizer. */
    private static Path copyOf(String name, Path dir, java.util.function.Consumer<com.fasterxml.jackson.databind.node.ObjectNode> edit)
            throws IOException {
        Files.copy(root().resolve(name).resolve("model.safetensors"), dir.resolve("model.safetensors"));
        var config = (com.fasterxml.jackson.databind.node.ObjectNode) JSON.readTree(root().resolve(name).resolve("config.json").toFile());
        edit.accept(config);
        JSON.writeValue(dir.resolve("config.json").toFile(), config);
        Files.copy(root().resolve("wordpiece-tokenizer.json"), dir.resolve("tokenizer.json"));
        return dir;
    }

    private static float[] goldenLogits(String name, int input) throws IOException {
        return JSON.treeToValue(JSON.readTree(root().resolve(name).resolve("goldens.json").toFile()).get("inputs").get(input).get("logits"),
                float[].class);
    }

    /**
     * A decoder reward model scores pairs whose tokenizer marks the second text as type 1 (the types are
     * read as 0: a decoder has no type embeddings), and pools the input's last token that is not its pad
     * token, as Transformers does: trailing pad ids change nothing.
     */
    @Test
    void aDecoderRewardModelScoresPairsAndSkipsTrailingPads(@TempDir Path dir) throws IOException {
        RuntimeAssumptions.requireTokenizers();
        try (LLM llm = LLM.builder().model(copyOf("llama-reward-tiny", dir, c -> { }).toString()).device("cpu").build()) {
            List<ScoringOutput> scores = llm.score("What is the capital of France?", List.of("Paris is the capital of France."));
            int[] ids = {2, 12, 8, 4, 5, 6, 7, 13, 3, 9, 8, 4, 5, 6, 7, 14, 3};
            assertEquals(llm.classify(List.of(ids), null).getFirst().probs()[0], scores.getFirst().score(), 1e-7);
            float[] plain = llm.classify(List.of(new int[]{5, 6, 7}), null).getFirst().probs();
            float[] padded = llm.classify(List.of(new int[]{5, 6, 7, 0, 0}), null).getFirst().probs();
            assertArrayEquals(plain, padded, 1e-6f, "trailing pad ids (pad_token_id 0) are not pooled");
        }
    }

    /**
     * A cross-encoder's score goes through the activation its sentence-transformers config names (Identity:
     * the raw logit, as ms-marco MiniLM asks), and a multi-label classifier gives each label its own sigmoid.
     */
    @Test
    void theCheckpointsActivationShapesScoresAndMultiLabelProbabilities(@TempDir Path dir) throws IOException {
        RuntimeAssumptions.requireTokenizers();  // the copies carry the WordPiece tokenizer
        Path identity = Files.createDirectories(dir.resolve("identity"));
        copyOf("bert-cross-encoder-tiny", identity, c -> c.putObject("sentence_transformers").put("activation_fn", "torch.nn.modules.linear.Identity"));
        JsonNode goldens = JSON.readTree(root().resolve("bert-cross-encoder-tiny").resolve("goldens.json").toFile());
        int[] ids = JSON.treeToValue(goldens.get("inputs").get(3).get("token_ids"), int[].class);
        int[] types = JSON.treeToValue(goldens.get("inputs").get(3).get("token_type_ids"), int[].class);
        try (LLM llm = LLM.builder().model(identity.toString()).device("cpu").build()) {
            float p = llm.classify(List.of(ids), List.of(types)).getFirst().probs()[0];
            assertEquals(goldenLogits("bert-cross-encoder-tiny", 3)[0], Math.log(p / (1 - p)), 1e-5, "classify keeps its sigmoid");
        }
        Path multi = Files.createDirectories(dir.resolve("multi"));
        copyOf("bert-classifier-tiny", multi, c -> c.put("problem_type", "multi_label_classification"));
        JsonNode classifier = JSON.readTree(root().resolve("bert-classifier-tiny").resolve("goldens.json").toFile()).get("inputs").get(2);
        try (LLM llm = LLM.builder().model(multi.toString()).device("cpu").build()) {
            float[] probs = llm.classify(List.of(JSON.treeToValue(classifier.get("token_ids"), int[].class)), null).getFirst().probs();
            float[] logits = goldenLogits("bert-classifier-tiny", 2);
            for (int i = 0; i < 3; i++) assertEquals(1 / (1 + Math.exp(-logits[i])), probs[i], 2e-6, "label " + i);
        }
        // A regression head (problem_type "regression", as reward models are trained) gives its logits themselves.
        Path regression = Files.createDirectories(dir.resolve("regression"));
        copyOf("bert-classifier-tiny", regression, c -> c.put("problem_type", "regression"));
        try (LLM llm = LLM.builder().model(regression.toString()).device("cpu").build()) {
            float[] raw = llm.classify(List.of(JSON.treeToValue(classifier.get("token_ids"), int[].class)), null).getFirst().probs();
            assertArrayEquals(goldenLogits("bert-classifier-tiny", 2), raw, 2e-6f);
        }
        // An activation jvllm does not apply fails the scores that need it, not the classifications that do not.
        Path bad = Files.createDirectories(dir.resolve("bad"));
        copyOf("bert-cross-encoder-tiny", bad, c -> c.put("sbert_ce_default_activation_function", "torch.nn.modules.activation.GELU"));
        try (LLM llm = LLM.builder().model(bad.toString()).device("cpu").build()) {
            assertEquals(1, llm.classify(List.of(ids), List.of(types)).getFirst().probs().length);
            var refused = assertThrows(InvalidRequestException.class, () -> llm.score("a", List.of("b")));
            assertTrue(refused.getMessage().contains("GELU"), refused.getMessage());
        }
    }

    /** The identity-activated cross-encoder's score is its logit, through the tokenizer's pair template. */
    @Test
    void anIdentityCrossEncoderScoresWithItsRawLogit(@TempDir Path dir) throws IOException {
        RuntimeAssumptions.requireTokenizers();
        copyOf("bert-cross-encoder-tiny", dir, c -> c.putObject("sentence_transformers").put("activation_fn", "torch.nn.modules.linear.Identity"));
        try (LLM llm = LLM.builder().model(dir.toString()).device("cpu").build()) {
            double score = llm.score("What is the capital of France?", List.of("Paris is the capital of France.")).getFirst().score();
            int[] ids = {2, 12, 8, 4, 5, 6, 7, 13, 3, 9, 8, 4, 5, 6, 7, 14, 3};
            int[] types = new int[ids.length];
            for (int i = 9; i < types.length; i++) types[i] = 1;
            float p = llm.classify(List.of(ids), List.of(types)).getFirst().probs()[0];
            assertEquals(Math.log(p / (1 - p)), score, 1e-5);
        }
    }

    /**
     * A causal LM read as a classifier from its LM head's rows (vLLM's {@code classifier_from_token} under
     * {@code hf_overrides}, as a Qwen3-Reranker is served): with two tokens the score is the sigmoid of the
     * second's logit less the first's at the last position; with three, a softmax over the three logits.
     * Transformers' float32 logits of a tiny Qwen3 (tied embeddings) are the judge.
     */
    @Test
    void aCausalLmReadsAsAClassifierFromItsHeadsRows() {
        Golden golden = Golden.load(Golden.root().resolve("qwen3-qk-norm"));
        Golden.Prompt prompt = golden.prompts().get(1);
        float[] last = prompt.logits()[prompt.logits().length - 1];
        try (LLM llm = LLM.builder().model(golden.directory().toString()).device("cpu")
                .hfOverrides(java.util.Map.of("architectures", List.of("Qwen3ForSequenceClassification"), "classifier_from_token", List.of(5, 9)))
                .build()) {
            assertEquals(Task.CLASSIFY, llm.task());
            float p = llm.classify(List.of(prompt.tokenIds()), null).getFirst().probs()[0];
            assertEquals(1 / (1 + Math.exp(-(last[9] - last[5]))), p, 2e-6);
        }
        try (LLM llm = LLM.builder().model(golden.directory().toString()).device("cpu")
                .hfOverrides(java.util.Map.of("architectures", List.of("Qwen3ForSequenceClassification"), "classifier_from_token", List.of(5, 9, 17)))
                .build()) {
            float[] probs = llm.classify(List.of(prompt.tokenIds()), null).getFirst().probs();
            assertArrayEquals(ClassifierHead.probabilities(new float[]{last[5], last[9], last[17]}), probs, 2e-6f);
        }
        // vLLM's method: no_post_processing makes two tokens two labels; from_2_way_softmax needs exactly two.
        try (LLM llm = LLM.builder().model(golden.directory().toString()).device("cpu").hfOverrides(java.util.Map.of("architectures",
                List.of("Qwen3ForSequenceClassification"), "classifier_from_token", List.of(5, 9), "method", "no_post_processing")).build()) {
            float[] probs = llm.classify(List.of(prompt.tokenIds()), null).getFirst().probs();
            assertArrayEquals(ClassifierHead.probabilities(new float[]{last[5], last[9]}), probs, 2e-6f);
        }
        var three = assertThrows(dev.jvllm.JvllmException.class, () -> LLM.builder().model(golden.directory().toString()).device("cpu")
                .hfOverrides(java.util.Map.of("architectures", List.of("Qwen3ForSequenceClassification"), "classifier_from_token", List.of(5, 9, 17),
                        "method", "from_2_way_softmax")).build());
        assertTrue(three.getMessage().contains("two"), three.getMessage());
    }

    /**
     * classifier_from_token names its tokens as tokenizer.json writes them (a Qwen3-Reranker's "no",
     * "yes"): the same head as their ids; a name the vocabulary lacks is refused by name.
     */
    @Test
    void classifierTokensNamedByTextReadTheRowsOfTheirIds(@TempDir Path dir) throws IOException {
        RuntimeAssumptions.requireTokenizers();  // the names are read through the WordPiece tokenizer
        Golden golden = Golden.load(Golden.root().resolve("qwen3-qk-norm"));
        for (String file : List.of("config.json", "model.safetensors")) Files.copy(golden.directory().resolve(file), dir.resolve(file));
        Files.copy(root().resolve("wordpiece-tokenizer.json"), dir.resolve("tokenizer.json"));  // "capital" is 5, "paris" 9
        int[] input = golden.prompts().get(1).tokenIds();
        float[] byIds;
        try (LLM llm = LLM.builder().model(dir.toString()).device("cpu")
                .hfOverrides(java.util.Map.of("architectures", List.of("Qwen3ForSequenceClassification"), "classifier_from_token", List.of(5, 9)))
                .build()) {
            byIds = llm.classify(List.of(input), null).getFirst().probs();
        }
        try (LLM llm = LLM.builder().model(dir.toString()).device("cpu").hfOverrides(java.util.Map.of("architectures",
                List.of("Qwen3ForSequenceClassification"), "classifier_from_token", List.of("capital", "paris"))).build()) {
            assertArrayEquals(byIds, llm.classify(List.of(input), null).getFirst().probs(), 0f);
        }
        var unknown = assertThrows(dev.jvllm.JvllmException.class, () -> LLM.builder().model(dir.toString()).device("cpu")
                .hfOverrides(java.util.Map.of("architectures", List.of("Qwen3ForSequenceClassification"), "classifier_from_token",
                        List.of("capital", "lyon"))).build());
        assertTrue(unknown.getMessage().contains("'lyon' is not a token of the tokenizer"), unknown.getMessage());
    }

    /**
     * An embedding model's text cut by truncatePromptTokens keeps its special tokens, as vLLM's tokenizer
     * cuts on the left: [CLS], the text's last tokens, [SEP] (a CLS pooling reads the [CLS] it would
     * otherwise lose); scores of such a model cut their texts alike.
     */
    @Test
    void anEmbeddingModelsTextCutOnTheLeftKeepsItsSpecialTokens(@TempDir Path dir) throws IOException {
        RuntimeAssumptions.requireTokenizers();
        copyOf("bert-cross-encoder-tiny", dir, c -> { });
        try (LLM llm = LLM.builder().model(dir.toString()).device("cpu").task(Task.EMBED).build()) {
            var cut = llm.embed("what is the capital of france", dev.jvllm.PoolingParams.builder().truncatePromptTokens(5).build());
            assertArrayEquals(new int[]{2, 5, 6, 7, 3}, cut.promptTokenIds(), "[CLS] capital of france [SEP]");
            var scores = llm.score(List.of("paris ".repeat(200).strip()), List.of("paris"),
                    dev.jvllm.PoolingParams.builder().truncatePromptTokens(-1).build());
            assertEquals(128 + 3, scores.getFirst().promptTokens(), "the long text cut to the model's 128 positions, specials kept");
        }
    }
}
