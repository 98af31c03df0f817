package dev.jvllm.models;

import dev.jvllm.LLM;
import dev.jvllm.SamplingParams;
import org.junit.jupiter.api.Test;

import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** LLM.Builder.hfOverrides, as vLLM's hf_overrides: fields replaced, nested configs merged, null values kept. */
class HfOverridesTest {

    private static Path golden(String name) {
        return Golden.root().resolve(name);
    }

    /** A nested config is merged field by field: overriding one field of text_config keeps the others (the model loads and answers as itself). */
    @Test
    void aNestedConfigIsMergedFieldByField() throws Exception {
        Path llava = Path.of(HfOverridesTest.class.getResource("/vision-goldens/llava-default").toURI());
        SamplingParams greedy = SamplingParams.builder().temperature(0).maxTokens(4).build();
        int[] prompt = {1, 45, 100};
        String plain, overridden;
        try (LLM llm = LLM.builder().model(llava.toString()).device("cpu").build()) {
            plain = java.util.Arrays.toString(llm.generatePrompts(List.of(dev.jvllm.Prompt.tokens(prompt)), greedy).getFirst().outputs().getFirst()
                    .tokenIds().stream().mapToInt(Integer::intValue).toArray());
        }
        try (LLM llm = LLM.builder().model(llava.toString()).device("cpu").hfOverrides(Map.of("text_config", Map.of("max_position_embeddings", 64)))
                .build()) {
            assertEquals(64, llm.modelConfig().raw().path("text_config").path("max_position_embeddings").asInt());
            assertTrue(llm.modelConfig().raw().path("text_config").has("hidden_size"), "the nested config's other fields are kept");
            overridden = java.util.Arrays.toString(llm.generatePrompts(List.of(dev.jvllm.Prompt.tokens(prompt)), greedy).getFirst().outputs()
                    .getFirst().tokenIds().stream().mapToInt(Integer::intValue).toArray());
        }
        assertEquals(plain, overridden);
    }

    /** A top-level field is replaced whole, null included (vLLM sets it to None); a value that is not JSON is refused naming its key. */
    @Test
    void aTopLevelFieldIsReplacedAndNullIsAValue() {
        Map<String, Object> noWindow = new HashMap<>();
        noWindow.put("sliding_window", null);
        try (LLM llm = LLM.builder().model(golden("qwen2-sliding").toString()).device("cpu").hfOverrides(noWindow).build()) {
            assertTrue(llm.modelConfig().raw().path("sliding_window").isNull());
        }
        var refused = assertThrows(IllegalArgumentException.class, () -> LLM.builder().hfOverrides(Map.of("path", Path.of("/x"))));
        assertTrue(refused.getMessage().contains("'path'"), refused.getMessage());
        assertNotEquals(null, LLM.builder().hfOverrides(Map.of("list", List.of(1, "a", Map.of("k", true)))));
    }
}
