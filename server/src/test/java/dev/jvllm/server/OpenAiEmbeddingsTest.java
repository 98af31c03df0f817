package dev.jvllm.server;

import com.fasterxml.jackson.databind.JsonNode;
import dev.jvllm.EmbeddingOutput;
import dev.jvllm.LLM;
import dev.jvllm.PoolingParams;
import dev.jvllm.Prompt;
import dev.jvllm.Task;
import org.junit.jupiter.api.Test;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Base64;
import java.util.List;

import static dev.jvllm.server.OpenAiServerTest.DEMO;
import static dev.jvllm.server.OpenAiServerTest.assertError;
import static dev.jvllm.server.OpenAiServerTest.post;
import static org.junit.jupiter.api.Assertions.assertEquals;

/** /v1/embeddings over the demo model loaded for embedding (its last token's hidden state). */
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

            assertError(post(server, "/v1/completions", "{\"prompt\": \"x\"}"), 400, "model");
            assertError(post(server, "/v1/embeddings", "{\"input\": \"x\", \"encoding_format\": \"hex\"}"), 400, "encoding_format");
        }
    }
}
