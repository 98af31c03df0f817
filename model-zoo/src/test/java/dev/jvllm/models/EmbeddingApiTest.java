package dev.jvllm.models;

import dev.jvllm.EmbeddingOutput;
import dev.jvllm.InvalidRequestException;
import dev.jvllm.LLM;
import dev.jvllm.PoolingParams;
import dev.jvllm.Prompt;
import dev.jvllm.SamplingParams;
import dev.jvllm.Task;
import dev.jvllm.TokenEmbeddingsOutput;
import dev.jvllm.weights.DType;
import dev.jvllm.weights.SafetensorsTestWriter;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@code LLM.embed} as a user sees it, on a tiny random BERT (no tokenizer: token-id inputs). */
class EmbeddingApiTest {

    private static final int HIDDEN = 16, VOCAB = 50, POSITIONS = 12;

    @TempDir
    Path dir;

    private LLM tinyBert(String extraConfig, Task task) throws IOException {
        Files.writeString(dir.resolve("config.json"), "{\"architectures\": [\"BertModel\"], \"model_type\": \"bert\","
                + "\"vocab_size\": " + VOCAB + ", \"hidden_size\": " + HIDDEN + ", \"num_hidden_layers\": 1,"
                + "\"num_attention_heads\": 2, \"intermediate_size\": 32, \"hidden_act\": \"gelu\","
                + "\"max_position_embeddings\": " + POSITIONS + ", \"type_vocab_size\": 2" + extraConfig + "}");
        Random random = new Random(7);
        SafetensorsTestWriter w = new SafetensorsTestWriter();
        add(w, random, "embeddings.word_embeddings.weight", VOCAB, HIDDEN);
        add(w, random, "embeddings.position_embeddings.weight", POSITIONS, HIDDEN);
        add(w, random, "embeddings.token_type_embeddings.weight", 2, HIDDEN);
        add(w, random, "embeddings.LayerNorm.weight", HIDDEN);
        add(w, random, "embeddings.LayerNorm.bias", HIDDEN);
        String l = "encoder.layer.0.";
        for (String name : List.of("attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense")) {
            add(w, random, l + name + ".weight", HIDDEN, HIDDEN);
            add(w, random, l + name + ".bias", HIDDEN);
        }
        add(w, random, l + "intermediate.dense.weight", 32, HIDDEN);
        add(w, random, l + "intermediate.dense.bias", 32);
        add(w, random, l + "output.dense.weight", HIDDEN, 32);
        add(w, random, l + "output.dense.bias", HIDDEN);
        for (String norm : List.of("attention.output.LayerNorm", "output.LayerNorm")) {
            add(w, random, l + norm + ".weight", HIDDEN);
            add(w, random, l + norm + ".bias", HIDDEN);
        }
        w.write(dir.resolve("model.safetensors"));
        return LLM.builder().model(dir.toString()).task(task).threads(1).build();
    }

    private static void add(SafetensorsTestWriter w, Random random, String name, long... shape) {
        double[] values = new double[(int) Arrays.stream(shape).reduce(1, (a, b) -> a * b)];
        for (int i = 0; i < values.length; i++) values[i] = random.nextGaussian() * 0.5;
        w.add(name, DType.F32, shape, values);
    }

    private static double norm(float[] v) {
        double s = 0;
        for (float x : v) s += x * x;
        return Math.sqrt(s);
    }

    @Test
    void autoTaskEmbedsWithAnEncoder() throws IOException {
        try (LLM llm = tinyBert("", Task.AUTO)) {
            assertEquals(Task.EMBED, llm.task());
            EmbeddingOutput out = llm.embed(new int[]{1, 5, 9, 2}, PoolingParams.defaults());
            assertEquals(HIDDEN, out.embedding().length);
            assertArrayEquals(new int[]{1, 5, 9, 2}, out.promptTokenIds());
            assertEquals(1.0, norm(out.embedding()), 1e-5);
        }
    }

    /**
     * Token embeddings (vLLM's token_embed): one row a token, the first the CLS embedding this model
     * pools, each row normalized by default, the same rows whether batched with other inputs or not.
     */
    @Test
    void tokenEmbeddingsAreEveryTokensFinalState() throws IOException {
        try (LLM llm = tinyBert("", Task.EMBED)) {
            int[] input = {1, 5, 9, 2};
            PoolingParams raw = PoolingParams.builder().normalize(false).build();
            TokenEmbeddingsOutput tokens = llm.embedTokens(List.of(Prompt.tokens(input)), raw).getFirst();
            assertEquals(4, tokens.embeddings().length);
            assertArrayEquals(input, tokens.promptTokenIds());
            assertArrayEquals(llm.embed(input, raw).embedding(), tokens.embeddings()[0], 1e-6f);

            List<TokenEmbeddingsOutput> batched = llm.embedTokens(List.of(Prompt.tokens(3, 4, 7), Prompt.tokens(input)), raw);
            for (int t = 0; t < 4; t++) assertArrayEquals(tokens.embeddings()[t], batched.get(1).embeddings()[t], 1e-5f);
            assertEquals(3, batched.get(0).embeddings().length);

            TokenEmbeddingsOutput normalized = llm.embedTokens(List.of(Prompt.tokens(input)), PoolingParams.defaults()).getFirst();
            for (float[] row : normalized.embeddings()) assertEquals(1.0, norm(row), 1e-5);
            assertEquals(4.0, normalized.maxSim(normalized), 1e-5, "each token's best match in itself is itself");
            TokenEmbeddingsOutput other = llm.embedTokens(List.of(Prompt.tokens(3, 4, 7)), PoolingParams.defaults()).getFirst();
            assertTrue(normalized.maxSim(other) < 4.0, "another input matches less well");
        }
    }

    @Test
    void generatingWithAnEmbeddingModelFailsNamingTheTask() throws IOException {
        try (LLM llm = tinyBert("", Task.EMBED)) {
            InvalidRequestException e = assertThrows(InvalidRequestException.class,
                    () -> llm.generate(new int[]{1, 2}, SamplingParams.greedy()));
            assertEquals("task", e.field());
        }
    }

    @Test
    void theAsyncEngineRefusesAnEmbeddingModel() throws IOException {
        tinyBert("", Task.EMBED).close();
        InvalidRequestException e = assertThrows(InvalidRequestException.class,
                () -> LLM.builder().model(dir.toString()).threads(1).buildAsync());
        assertEquals("task", e.field());
    }

    @Test
    void inputsLongerThanTheModelAreRefusedUnlessTruncated() throws IOException {
        try (LLM llm = tinyBert("", Task.EMBED)) {
            int[] longInput = new int[POSITIONS + 3];
            for (int i = 0; i < longInput.length; i++) longInput[i] = 3 + i;
            InvalidRequestException e = assertThrows(InvalidRequestException.class,
                    () -> llm.embed(longInput, PoolingParams.defaults()));
            assertTrue(e.getMessage().contains("15 tokens") && e.getMessage().contains("maximum model length of 12"), e.getMessage());

            EmbeddingOutput truncated = llm.embed(longInput, PoolingParams.builder().truncatePromptTokens(-1).build());
            int[] lastTwelve = Arrays.copyOfRange(longInput, 3, longInput.length);
            assertArrayEquals(lastTwelve, truncated.promptTokenIds());
            assertArrayEquals(llm.embed(lastTwelve, PoolingParams.defaults()).embedding(), truncated.embedding(), 1e-6f);
            assertEquals(5, llm.embed(longInput, PoolingParams.builder().truncatePromptTokens(5).build()).promptTokenIds().length);
        }
    }

    @Test
    void dimensionsAreRefusedForModelsWithoutMatryoshkaSupport() throws IOException {
        try (LLM llm = tinyBert("", Task.EMBED)) {
            InvalidRequestException e = assertThrows(InvalidRequestException.class,
                    () -> llm.embed(new int[]{1, 2, 3}, PoolingParams.builder().dimensions(8).build()));
            assertEquals("dimensions", e.field());
            assertTrue(e.getMessage().contains("Matryoshka"), e.getMessage());
        }
    }

    @Test
    void matryoshkaModelsTruncateThenNormalize() throws IOException {
        try (LLM llm = tinyBert(", \"is_matryoshka\": true", Task.EMBED)) {
            int[] input = {1, 7, 8, 2};
            float[] raw = llm.embed(input, PoolingParams.builder().normalize(false).build()).embedding();
            float[] eight = llm.embed(input, PoolingParams.builder().dimensions(8).build()).embedding();
            assertEquals(8, eight.length);
            double n = norm(Arrays.copyOf(raw, 8));
            for (int i = 0; i < 8; i++) assertEquals(raw[i] / n, eight[i], 1e-5);
            assertThrows(InvalidRequestException.class,
                    () -> llm.embed(input, PoolingParams.builder().dimensions(HIDDEN + 1).build()));
        }
    }

    @Test
    void outOfVocabularyIdsAreRefused() throws IOException {
        try (LLM llm = tinyBert("", Task.EMBED)) {
            InvalidRequestException e = assertThrows(InvalidRequestException.class,
                    () -> llm.embed(new int[]{1, VOCAB}, PoolingParams.defaults()));
            assertTrue(e.getMessage().contains("token id " + VOCAB), e.getMessage());
        }
    }

    @Test
    void batchedInputsEqualInputsRunAlone() throws IOException {
        try (LLM llm = tinyBert("", Task.EMBED)) {
            List<int[]> inputs = List.of(new int[]{1, 4, 2}, new int[]{1, 9, 9, 9, 9, 2}, new int[]{3});
            List<EmbeddingOutput> batched = llm.encode(inputs.stream().map(dev.jvllm.Prompt::tokens).toList(), PoolingParams.defaults());
            for (int i = 0; i < inputs.size(); i++) {
                assertArrayEquals(llm.embed(inputs.get(i), PoolingParams.defaults()).embedding(), batched.get(i).embedding(), 1e-5f);
            }
        }
    }
}
