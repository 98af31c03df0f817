package dev.jvllm.server;

import com.fasterxml.jackson.databind.JsonNode;
import dev.jvllm.ClassificationOutput;
import dev.jvllm.LLM;
import dev.jvllm.ScoringOutput;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static dev.jvllm.server.OpenAiServerTest.assertError;
import static dev.jvllm.server.OpenAiServerTest.post;
import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * /v1/classify, /v1/score and /rerank over a cross-encoder (a tiny random BertForSequenceClassification of
 * one label, model-zoo's classification goldens, with a WordPiece tokenizer of 15 words): the library's
 * classifications and scores over HTTP.
 */
class OpenAiClassificationTest {

    private static final Path GOLDENS = Files.isDirectory(Path.of("../model-zoo/src/test/resources/classification-goldens"))
            ? Path.of("../model-zoo/src/test/resources/classification-goldens") : Path.of("model-zoo/src/test/resources/classification-goldens");

    private static Path crossEncoder(Path dir) throws Exception {
        for (String file : List.of("config.json", "model.safetensors")) {
            Files.copy(GOLDENS.resolve("bert-cross-encoder-tiny").resolve(file), dir.resolve(file));
        }
        Files.copy(GOLDENS.resolve("wordpiece-tokenizer.json"), dir.resolve("tokenizer.json"));
        return dir;
    }

    @Test
    void classificationsScoresAndRerankingsAreTheLibrarys(@TempDir Path dir) throws Exception {
        Path model = crossEncoder(dir);
        String query = "What is the capital of France?";
        List<String> documents = List.of("Berlin is the capital of Germany.", "Paris is the capital of France.", "What is Paris?");
        List<ClassificationOutput> classified;
        List<ScoringOutput> scores;
        try (LLM reference = LLM.builder().model(model.toString()).device("cpu").build()) {
            classified = reference.classify(documents);
            scores = reference.score(query, documents);
        }
        try (OpenAiServer server = OpenAiServer.builder(LLM.builder().model(model.toString()).device("cpu").build())
                .port(0).servedModelName("reranker").start()) {
            var classify = post(server, "/v1/classify", "{\"model\": \"reranker\", \"input\": [\"" + String.join("\", \"", documents) + "\"]}");
            assertEquals(200, classify.status(), String.valueOf(classify.body()));
            JsonNode data = classify.body().path("data");
            int tokens = 0;
            for (int i = 0; i < documents.size(); i++) {
                assertEquals(i, data.get(i).path("index").asInt());
                assertEquals("LABEL_0", data.get(i).path("label").asText());
                assertEquals(1, data.get(i).path("num_classes").asInt());
                assertEquals(classified.get(i).probs()[0], data.get(i).path("probs").get(0).floatValue(), 1e-6f);
                tokens += classified.get(i).promptTokenIds().length;
            }
            assertEquals(tokens, classify.body().path("usage").path("prompt_tokens").asInt());
            // vLLM's /pooling with task classify: the same probabilities, each input's as its data.
            var pooled = post(server, "/pooling", "{\"input\": [\"" + String.join("\", \"", documents) + "\"], \"task\": \"classify\"}");
            assertEquals(200, pooled.status(), String.valueOf(pooled.body()));
            for (int i = 0; i < documents.size(); i++) {
                JsonNode item = pooled.body().path("data").get(i);
                assertEquals("pooling", item.path("object").asText());
                assertEquals(classified.get(i).probs()[0], item.path("data").get(0).floatValue(), 1e-6f);
            }
            assertEquals(tokens, pooled.body().path("usage").path("prompt_tokens").asInt());
            assertEquals(0, pooled.body().path("usage").path("completion_tokens").asInt(-1));
            var base64 = post(server, "/pooling", "{\"input\": \"" + documents.get(1) + "\", \"encoding_format\": \"base64\"}");
            float fromBase64 = java.nio.ByteBuffer.wrap(java.util.Base64.getDecoder().decode(base64.body().path("data").get(0).path("data").asText()))
                    .order(java.nio.ByteOrder.LITTLE_ENDIAN).getFloat();
            assertEquals(classified.get(1).probs()[0], fromBase64, 1e-6f);
            assertError(post(server, "/pooling", "{\"input\": \"x\", \"task\": \"embed\"}"), 400, "task");
            assertError(post(server, "/pooling", "{\"input\": \"x\", \"dimensions\": 2}"), 400, "dimensions");

            var score = post(server, "/v1/score", "{\"text_1\": \"" + query + "\", \"text_2\": [\"" + String.join("\", \"", documents) + "\"]}");
            assertEquals(200, score.status(), String.valueOf(score.body()));
            for (int i = 0; i < documents.size(); i++) {
                assertEquals(scores.get(i).score(), score.body().path("data").get(i).path("score").asDouble(), 1e-6);
            }
            var rerank = post(server, "/rerank", "{\"query\": \"" + query + "\", \"documents\": [\"" + String.join("\", \"", documents) + "\"], \"top_n\": 2}");
            assertEquals(200, rerank.status(), String.valueOf(rerank.body()));
            JsonNode results = rerank.body().path("results");
            assertEquals(2, results.size());
            List<Integer> order = List.of(0, 1, 2).stream().sorted((a, b) -> Double.compare(scores.get(b).score(), scores.get(a).score())).toList();
            for (int rank = 0; rank < 2; rank++) {
                assertEquals(order.get(rank).intValue(), results.get(rank).path("index").asInt());
                assertEquals(scores.get(order.get(rank)).score(), results.get(rank).path("relevance_score").asDouble(), 1e-6);
            }
            // Token ids as vLLM takes them: the same answer as the text they encode.
            int[] encoded = classified.get(1).promptTokenIds();
            var byIds = post(server, "/classify", "{\"input\": [" + java.util.Arrays.toString(encoded) + "]}");
            assertEquals(200, byIds.status(), String.valueOf(byIds.body()));
            assertEquals(classified.get(1).probs()[0], byIds.body().path("data").get(0).path("probs").get(0).floatValue(), 1e-6f);
            // A document longer than the model's positions: refused, or cut with vLLM's truncate_prompt_tokens.
            String longDocument = "paris ".repeat(200).strip();
            assertEquals(400, post(server, "/rerank", "{\"query\": \"" + query + "\", \"documents\": [\"" + longDocument + "\"]}").status());
            var cut = post(server, "/rerank", "{\"query\": \"" + query + "\", \"documents\": [\"" + longDocument + "\"], \"truncate_prompt_tokens\": -1}");
            assertEquals(200, cut.status(), String.valueOf(cut.body()));
            assertEquals(128, cut.body().path("usage").path("total_tokens").asInt(), "the pair cut to the model's 128 positions");
            assertError(post(server, "/v1/embeddings", "{\"input\": \"x\"}"), 400, "model");
            assertError(post(server, "/v1/completions", "{\"prompt\": \"x\"}"), 400, "model");
            assertError(post(server, "/v1/classify", "{\"input\": []}"), 400, "input");
            assertError(post(server, "/v1/classify", "{\"input\": [[9999]]}"), 400, "input");
        }
    }
}
