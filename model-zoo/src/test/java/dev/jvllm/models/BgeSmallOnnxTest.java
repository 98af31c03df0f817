package dev.jvllm.models;

import dev.jvllm.EmbeddingOutput;
import dev.jvllm.LLM;
import dev.jvllm.PoolingParams;
import dev.jvllm.Task;
import dev.jvllm.models.onnx.BertOnnxImporter;
import dev.jvllm.models.onnx.OnnxBertReference;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The real BAAI bge-small-en-v1.5, imported from its ONNX export, against ONNX Runtime running
 * that same export: the two implementations must agree on every vector.
 */
class BgeSmallOnnxTest {

    static final List<String> SENTENCES = List.of(
            "The cat sat on the mat.",
            "A quick brown fox jumps over the lazy dog.",
            "Paris is the capital and most populous city of France.",
            "Photosynthesis converts light energy into chemical energy stored in glucose.",
            "How do I reset my password?",
            "The stock market fell sharply after the announcement of new tariffs.",
            "She plays the violin in the city orchestra every Friday evening.",
            "Quantum entanglement links the states of two particles regardless of distance.",
            "I'd like to book a table for two at 8 pm, please.",
            "Water boils at 100 degrees Celsius at sea level.",
            "The mitochondria is the powerhouse of the cell.",
            "Shakespeare wrote Hamlet around the year 1600.",
            "Can you recommend a good Italian restaurant nearby?",
            "The new smartphone features a 6.7-inch OLED display and 5G connectivity.",
            "Regular exercise lowers the risk of heart disease.",
            "Mount Everest is the highest mountain above sea level.",
            "Java 25 adds new features to the language and the virtual machine.",
            "The museum's collection includes works by Monet, Van Gogh and Cézanne.",
            "Interest rates were raised by a quarter of a percentage point.",
            "The recipe calls for two cups of flour, one egg and a pinch of salt.",
            "Neural networks learn representations from data through gradient descent.",
            "Our flight was delayed by three hours due to a snowstorm.",
            "The Great Wall of China stretches for thousands of kilometres.",
            "He forgot his umbrella and got soaked in the rain.",
            "Vaccines train the immune system to recognise pathogens.",
            "The committee will meet on Tuesday to discuss the budget.",
            "Whales are mammals that breathe air through blowholes.",
            "The library opens at nine and closes at five on weekdays.",
            "Electric cars are becoming cheaper as battery costs decline.",
            "Why is the sky blue?",
            "The Amazon rainforest produces a significant share of the world's oxygen.",
            "Please submit your report by the end of the week.",
            "The football match ended in a two-all draw.",
            "Gravity keeps the planets in orbit around the Sun.",
            "A balanced diet includes fruits, vegetables, proteins and grains.",
            "The detective found a crucial clue hidden under the floorboards.",
            "Rust and Go are popular languages for systems programming.",
            "The concert was cancelled because the singer fell ill.",
            "Honey never spoils if it is stored properly.",
            "The treaty was signed in 1648, ending the Thirty Years' War.",
            "My laptop battery drains too quickly; what should I do?",
            "Coral reefs are threatened by rising ocean temperatures.",
            "The algorithm runs in O(n log n) time on average.",
            "Tokyo hosted the Summer Olympic Games in 2021.",
            "Meditation can reduce stress and improve concentration.",
            "The bakery on the corner sells fresh croissants every morning.",
            "DNA carries the genetic instructions of living organisms.",
            "The train to Berlin departs from platform 4 at 10:15.",
            "Solar panels convert sunlight directly into electricity.",
            "ok");

    private static LLM llm;
    private static OnnxBertReference onnx;

    @BeforeAll
    static void load() {
        Path model = BertOnnxImporter.bgeSmall(Path.of("target", "embedding-models"));
        llm = LLM.builder().model(model.toString()).task(Task.EMBED).threads(2).build();
        onnx = new OnnxBertReference(model.resolve("model.onnx"), 2);
    }

    @AfterAll
    static void close() {
        if (llm != null) llm.close();
        if (onnx != null) onnx.close();
    }

    @Test
    void embeddingsOf50SentencesMatchOnnxRuntime() {
        List<EmbeddingOutput> ours = llm.embed(SENTENCES, PoolingParams.defaults());
        List<float[]> reference = onnx.embed(ours.stream().map(EmbeddingOutput::promptTokenIds).toList());
        assertEquals(50, ours.size());
        for (int i = 0; i < SENTENCES.size(); i++) {
            float[] a = ours.get(i).embedding(), b = reference.get(i);
            assertEquals(384, a.length);
            double dot = 0;
            for (int k = 0; k < a.length; k++) dot += (double) a[k] * b[k];
            assertTrue(dot > 0.9999, "cosine " + dot + " with ONNX Runtime for: " + SENTENCES.get(i));
        }
    }

    @Test
    void textsAreTokenizedBetweenClsAndSep() {
        int[] ids = llm.embed("ok").promptTokenIds();
        assertEquals(101, ids[0]);
        assertEquals(102, ids[ids.length - 1]);
    }

    @Test
    void theSentenceTransformersNormalizeModuleMakesUnitVectors() {
        float[] v = llm.embed("Unit length by default.").embedding();
        double norm = 0;
        for (float x : v) norm += x * x;
        assertEquals(1.0, Math.sqrt(norm), 1e-5);
    }

    @Test
    void eachQueryIsClosestToItsOwnPassage() {
        String instruction = "Represent this sentence for searching relevant passages: ";
        List<String> queries = List.of("what is the capital of france", "how do plants make food from sunlight",
                "when did humans first land on the moon", "how to cook pasta", "what causes tides in the ocean");
        List<String> passages = List.of(
                "Paris is the capital of France and its largest city.",
                "Plants use photosynthesis to turn sunlight, water and carbon dioxide into sugar.",
                "Apollo 11 landed on the Moon on July 20, 1969, carrying Neil Armstrong and Buzz Aldrin.",
                "Boil salted water, add the pasta and cook it for about ten minutes until al dente.",
                "Tides are caused mainly by the gravitational pull of the Moon on the Earth's oceans.",
                "The stock exchange closed higher on Friday.",
                "Basketball was invented by James Naismith in 1891.");
        List<EmbeddingOutput> q = llm.embed(queries.stream().map(s -> instruction + s).toList(), PoolingParams.defaults());
        List<EmbeddingOutput> p = llm.embed(passages, PoolingParams.defaults());
        for (int i = 0; i < queries.size(); i++) {
            int best = -1;
            double bestScore = -2;
            for (int j = 0; j < passages.size(); j++) {
                double score = q.get(i).cosine(p.get(j));
                if (score > bestScore) {
                    bestScore = score;
                    best = j;
                }
            }
            assertEquals(i, best, "query '" + queries.get(i) + "' retrieved '" + passages.get(best) + "'");
        }
    }

    @Test
    void batchingDoesNotChangeAVector() {
        EmbeddingOutput alone = llm.embed(SENTENCES.get(3), PoolingParams.defaults());
        EmbeddingOutput batched = llm.embed(SENTENCES.subList(0, 8), PoolingParams.defaults()).get(3);
        assertArrayEquals(alone.embedding(), batched.embedding(), 1e-5f);
    }
}
