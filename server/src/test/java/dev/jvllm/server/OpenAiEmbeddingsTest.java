package dev.jvllm.server;

import com.fasterxml.jackson.databind.JsonNode;
import dev.jvllm.EmbeddingOutput;
import dev.jvllm.InvalidRequestException;
import dev.jvllm.LLM;
import dev.jvllm.PoolingParams;
import dev.jvllm.Prompt;
import dev.jvllm.ScoringOutput;
import dev.jvllm.Task;
import dev.jvllm.TokenEmbeddingsOutput;
import org.junit.jupiter.api.Test;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Base64;
import java.util.List;

import static dev.jvllm.server.OpenAiServerTest.DEMO;
import static dev.jvllm.server.OpenAiServerTest.assertError;
import static dev.jvllm.server.OpenAiServerTest.post;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/** /v1/embeddings, /v1/score and /rerank over the demo model loaded for embedding (its last token's hidden state). */
class OpenAiEmbeddingsTest {

    /**
     * The CPU backend's sums are not bit-reproducible between a process's first calls and later ones
     * (the JIT's lane reductions), so a second computation agrees to about 1e-6 of these unit vectors.
     */
    private static final float TOLERANCE = 1e-5f;

    @Test
    void embeddingsAreTheLibrarysInEitherEncodingAndGenerationIsRefused() throws Exception {
        List<Prompt> inputs = List.of(Prompt.text("The European Parliament"), Prompt.text("Mr President"), Prompt.tokens(1, 450, 1000));
        List<EmbeddingOutput> expected;
        try (LLM reference = LLM.builder().model(DEMO.toString()).task(Task.EMBED).build()) {
            expected = reference.encode(inputs, PoolingParams.defaults());
        }
        try (OpenAiServer server = OpenAiServer.builder(LLM.builder().model(DEMO.toString()).task(Task.EMBED).build())
                .port(0).servedModelName("demo-embed").start()) {
            var floats = post(server, "/v1/embeddings", "{\"model\": \"demo-embed\", \"input\": [\"The European Parliament\", \"Mr President\", [1, 450, 1000]]}");
            assertEquals(200, floats.status(), String.valueOf(floats.body()));
            JsonNode data = floats.body().path("data");
            assertEquals(3, data.size());
            int tokens = 0;
            for (int i = 0; i < 3; i++) {
                assertEquals(i, data.get(i).path("index").asInt());
                float[] want = expected.get(i).embedding();
                JsonNode got = data.get(i).path("embedding");
                assertEquals(want.length, got.size());
                for (int d = 0; d < want.length; d++) assertEquals(want[d], got.get(d).floatValue(), TOLERANCE, "input " + i + ", dimension " + d);
                tokens += expected.get(i).promptTokenIds().length;
            }
            assertEquals(tokens, floats.body().path("usage").path("prompt_tokens").asInt());

            var base64 = post(server, "/v1/embeddings", "{\"input\": \"Mr President\", \"encoding_format\": \"base64\"}");
            ByteBuffer bytes = ByteBuffer.wrap(Base64.getDecoder().decode(base64.body().path("data").get(0).path("embedding").asText()))
                    .order(ByteOrder.LITTLE_ENDIAN);
            float[] want = expected.get(1).embedding();
            for (float v : want) assertEquals(v, bytes.getFloat(), TOLERANCE);

            // vLLM's /pooling: the embedding as /v1/embeddings gives it, or every token's state.
            var pooled = post(server, "/pooling", "{\"input\": [\"Mr President\"]}");
            JsonNode vector = pooled.body().path("data").get(0).path("data");
            for (int d = 0; d < want.length; d++) assertEquals(want[d], vector.get(d).floatValue(), TOLERANCE);
            var perToken = post(server, "/pooling", "{\"input\": [1, 450, 1000], \"task\": \"token_embed\", \"normalize\": false}");
            JsonNode rows = perToken.body().path("data").get(0).path("data");
            List<TokenEmbeddingsOutput> tokenStates;
            try (LLM reference = LLM.builder().model(DEMO.toString()).task(Task.EMBED).build()) {
                tokenStates = reference.embedTokens(List.of(Prompt.tokens(1, 450, 1000)), PoolingParams.builder().normalize(false).build());
            }
            assertEquals(3, rows.size());
            for (int t = 0; t < 3; t++) {
                float[] state = tokenStates.getFirst().embeddings()[t];
                for (int d = 0; d < state.length; d++) assertEquals(state[d], rows.get(t).get(d).floatValue(), 1e-4f, "token " + t);
            }
            assertEquals(3, perToken.body().path("usage").path("prompt_tokens").asInt());
            assertError(post(server, "/pooling", "{\"input\": \"x\", \"task\": \"classify\"}"), 400, "task");
            var pooledBase64 = post(server, "/pooling", "{\"input\": \"Mr President\", \"encoding_format\": \"base64\"}");
            ByteBuffer pooledBytes = ByteBuffer.wrap(Base64.getDecoder().decode(pooledBase64.body().path("data").get(0).path("data").asText()))
                    .order(ByteOrder.LITTLE_ENDIAN);
            for (float v : want) assertEquals(v, pooledBytes.getFloat(), TOLERANCE);
            assertError(post(server, "/pooling", "{\"input\": \"x\", \"task\": \"token_embed\", \"encoding_format\": \"base64\"}"), 400,
                    "encoding_format");

            assertError(post(server, "/v1/completions", "{\"prompt\": \"x\"}"), 400, "model");
            assertError(post(server, "/v1/embeddings", "{\"input\": \"x\", \"encoding_format\": \"hex\"}"), 400, "encoding_format");
        }
    }

    /**
     * vLLM's score and rerank APIs over an embedding model: the cosine similarities of the texts'
     * embeddings, in Java (one text against several, and pairs) and over HTTP (/v1/score, /rerank).
     */
    @Test
    void scoresAreTheCosinesOfTheEmbeddingsAndRerankingSortsByThem() throws Exception {
        String query = "The European Parliament";
        List<String> documents = List.of("Mr President, I would like to", "The European Parliament met", "Good morning");
        List<ScoringOutput> oneToMany;
        List<ScoringOutput> pairs;
        List<EmbeddingOutput> embedded;
        try (LLM reference = LLM.builder().model(DEMO.toString()).task(Task.EMBED).build()) {
            embedded = reference.embed(List.of(query, documents.get(0), documents.get(1), documents.get(2)), PoolingParams.defaults());
            oneToMany = reference.score(query, documents);
            pairs = reference.score(List.of(documents.get(1), documents.get(2)), List.of(documents.get(0), query));
            assertThrows(InvalidRequestException.class, () -> reference.score(List.of("a", "b"), documents), "two texts against three");
        }
        for (int i = 0; i < 3; i++) {
            assertEquals(embedded.get(0).cosine(embedded.get(i + 1)), oneToMany.get(i).score(), TOLERANCE, "the query against document " + i);
            assertEquals(embedded.get(0).promptTokenIds().length + embedded.get(i + 1).promptTokenIds().length, oneToMany.get(i).promptTokens());
        }
        assertEquals(embedded.get(2).cosine(embedded.get(1)), pairs.get(0).score(), TOLERANCE, "the first pair");
        assertEquals(embedded.get(3).cosine(embedded.get(0)), pairs.get(1).score(), TOLERANCE, "the second pair");

        try (OpenAiServer server = OpenAiServer.builder(LLM.builder().model(DEMO.toString()).task(Task.EMBED).build()).port(0).start()) {
            var scored = post(server, "/v1/score", "{\"text_1\": \"" + query + "\", \"text_2\": [\"" + String.join("\", \"", documents) + "\"]}");
            assertEquals(200, scored.status(), String.valueOf(scored.body()));
            JsonNode data = scored.body().path("data");
            for (int i = 0; i < 3; i++) {
                assertEquals(i, data.get(i).path("index").asInt());
                assertEquals(oneToMany.get(i).score(), data.get(i).path("score").asDouble(), TOLERANCE);
            }

            var reranked = post(server, "/rerank", "{\"query\": \"" + query + "\", \"documents\": [\"" + String.join("\", \"", documents)
                    + "\"], \"top_n\": 2}");
            assertEquals(200, reranked.status(), String.valueOf(reranked.body()));
            JsonNode results = reranked.body().path("results");
            assertEquals(2, results.size(), "top_n");
            List<Integer> byScore = new java.util.ArrayList<>(List.of(0, 1, 2));
            byScore.sort((a, b) -> Double.compare(oneToMany.get(b).score(), oneToMany.get(a).score()));
            for (int rank = 0; rank < 2; rank++) {
                int index = byScore.get(rank);
                assertEquals(index, results.get(rank).path("index").asInt(), reranked.body().toString());
                assertEquals(documents.get(index), results.get(rank).path("document").path("text").asText());
                assertEquals(oneToMany.get(index).score(), results.get(rank).path("relevance_score").asDouble(), TOLERANCE);
            }

            assertError(post(server, "/v1/score", "{\"text_1\": [\"a\", \"b\"], \"text_2\": [\"c\", \"d\", \"e\"]}"), 400, "text_1");
            assertError(post(server, "/v1/score", "{\"text_1\": \"a\"}"), 400, "text_2");
            assertError(post(server, "/v1/rerank", "{\"documents\": [\"a\"]}"), 400, "query");
            assertError(post(server, "/v1/rerank", "{\"query\": \"a\", \"documents\": \"b\"}"), 400, "documents");
            assertError(post(server, "/v2/rerank", "{\"query\": \"a\", \"documents\": [\"b\"], \"top_n\": -1}"), 400, "top_n");
        }
        try (OpenAiServer generating = OpenAiServer.builder(LLM.builder().model(DEMO.toString()).build()).port(0).start()) {
            assertError(post(generating, "/v1/score", "{\"text_1\": \"a\", \"text_2\": \"b\"}"), 400, "model");
        }
    }
}
