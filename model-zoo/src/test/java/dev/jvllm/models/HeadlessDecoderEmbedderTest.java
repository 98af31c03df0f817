package dev.jvllm.models;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.jvllm.EmbeddingOutput;
import dev.jvllm.JvllmException;
import dev.jvllm.LLM;
import dev.jvllm.PoolingParams;
import dev.jvllm.Prompt;
import dev.jvllm.Task;
import dev.jvllm.weights.Checkpoint;
import dev.jvllm.weights.SafetensorsTestWriter;
import dev.jvllm.weights.WeightTensor;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.TestFactory;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A decoder saved the way Transformers' headless classes save it (no {@code model.} prefix, no LM
 * head, {@code architectures: ["MistralModel"]}) embeds exactly as its causal checkpoint does with
 * {@link Task#EMBED}: the same {@link dev.jvllm.models.layers.PreNormDecoder} forward with the
 * matching family's options (Mistral's sliding window, Qwen2's q/k/v biases). The causal side is
 * checked against Transformers in {@link EmbeddingGoldenTest}.
 */
class HeadlessDecoderEmbedderTest {

    @TempDir
    Path temp;

    @TestFactory
    Stream<DynamicTest> headlessCheckpointsEmbedAsTheirCausalClass() {
        return Stream.of(new String[]{"llama-plain", "LlamaModel"}, new String[]{"mistral-sliding", "MistralModel"},
                        new String[]{"qwen2-sliding", "Qwen2Model"})
                .map(c -> DynamicTest.dynamicTest(c[1] + " from " + c[0], () -> check(Golden.load(Golden.root().resolve(c[0])), c[1])));
    }

    private void check(Golden golden, String headlessName) throws IOException {
        Path headless = Files.createDirectories(temp.resolve(headlessName));
        ObjectNode config = (ObjectNode) new ObjectMapper().readTree(golden.directory().resolve("config.json").toFile());
        config.putArray("architectures").add(headlessName);
        Files.writeString(headless.resolve("config.json"), config.toString());
        SafetensorsTestWriter writer = new SafetensorsTestWriter();
        try (Checkpoint causal = Checkpoint.open(golden.directory())) {
            for (String name : causal.names().stream().sorted().toList()) {
                if (!name.startsWith("model.")) continue; // the LM head stays behind
                WeightTensor t = causal.get(name);
                writer.add(name.substring("model.".length()), t.dtype(), t.shape(), t.data().toArray(ValueLayout.JAVA_BYTE));
            }
        }
        writer.write(headless.resolve("model.safetensors"));

        List<Prompt> prompts = golden.prompts().stream().map(p -> Prompt.tokens(p.tokenIds())).toList();
        PoolingParams raw = PoolingParams.builder().normalize(false).build();
        List<EmbeddingOutput> expected, actual;
        try (LLM llm = LLM.builder().model(golden.directory().toString()).task(Task.EMBED).maxModelLen(128).build()) {
            expected = llm.encode(prompts, raw);
        }
        try (LLM llm = LLM.builder().model(headless.toString()).maxModelLen(128).build()) {
            assertEquals(Task.EMBED, llm.task(), "task AUTO on a headless decoder");
            actual = llm.encode(prompts, raw);
        }
        for (int i = 0; i < prompts.size(); i++) {
            assertArrayEquals(expected.get(i).embedding(), actual.get(i).embedding(), 1e-6f, headlessName + " prompt " + i);
        }
        var e = assertThrows(JvllmException.class,
                () -> LLM.builder().model(headless.toString()).task(Task.GENERATE).maxModelLen(128).build());
        assertTrue(e.getMessage().contains("task(Task.EMBED)"), e.getMessage());
    }
}
