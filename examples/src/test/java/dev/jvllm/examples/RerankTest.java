package dev.jvllm.examples;

import dev.jvllm.LLM;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The re-ranking example over a tiny cross-encoder (model-zoo's classification goldens): the top k, best first, by the library's scores. */
class RerankTest {

    @Test
    void theBestPassagesComeFirst(@TempDir Path dir) throws Exception {
        Path goldens = Path.of("../model-zoo/src/test/resources/classification-goldens");
        for (String file : List.of("config.json", "model.safetensors")) {
            Files.copy(goldens.resolve("bert-cross-encoder-tiny").resolve(file), dir.resolve(file));
        }
        Files.copy(goldens.resolve("wordpiece-tokenizer.json"), dir.resolve("tokenizer.json"));
        List<String> passages = List.of("Berlin is the capital of Germany.", "Paris is the capital of France.", "What is Paris?");
        try (LLM reranker = new LLM(dir.toString())) {
            List<Rerank.Ranked> top = Rerank.rerank(reranker, "What is the capital of France?", passages, 2);
            assertEquals(2, top.size());
            assertTrue(top.get(0).score() >= top.get(1).score(), top.toString());
            double third = reranker.score("What is the capital of France?", passages).stream().mapToDouble(s -> s.score()).min().orElseThrow();
            assertTrue(top.get(1).score() >= third, "the passage left out scores lowest: " + top);
            assertEquals(reranker.score("What is the capital of France?", List.of(top.get(0).passage())).getFirst().score(), top.get(0).score(), 1e-9);
        }
    }
}
