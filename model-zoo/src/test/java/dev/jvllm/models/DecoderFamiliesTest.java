package dev.jvllm.models;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.jvllm.config.ModelConfig;
import dev.jvllm.models.layers.SlidingWindows;
import dev.jvllm.spi.ModelArchitecture;
import dev.jvllm.spi.ModelRegistry;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Map;
import java.util.function.Consumer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The Llama-shaped families: their registry entries, and how they reduce to Llama on Llama's weights. */
class DecoderFamiliesTest {

    @TempDir
    Path temp;

    @Test
    void everyFamilyIsFoundByItsArchitectureName() {
        Map<String, Class<? extends ModelArchitecture>> expected = Map.of(
                "Qwen2ForCausalLM", Qwen2ForCausalLM.class,
                "Qwen3ForCausalLM", Qwen3ForCausalLM.class,
                "MistralForCausalLM", MistralForCausalLM.class,
                "GemmaForCausalLM", GemmaForCausalLM.class,
                "Gemma2ForCausalLM", Gemma2ForCausalLM.class,
                "Phi3ForCausalLM", Phi3ForCausalLM.class);
        expected.forEach((name, type) -> assertInstanceOf(type,
                ModelRegistry.find(ModelConfig.parse("{\"architectures\": [\"" + name + "\"]}")), name));
    }

    @Test
    void yiAndDeepSeekLlmCheckpointsLoadAsLlama() {
        // The fields that matter from 01-ai/Yi-6B and deepseek-ai/deepseek-llm-7b-base's config.json.
        String yi = """
                {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 4096,
                 "num_attention_heads": 32, "num_key_value_heads": 4, "rope_theta": 5000000.0, "vocab_size": 64000}""";
        String deepSeek = """
                {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 4096,
                 "num_attention_heads": 32, "num_key_value_heads": 32, "rope_theta": 10000.0, "vocab_size": 102400}""";
        assertInstanceOf(LlamaForCausalLM.class, ModelRegistry.find(ModelConfig.parse(yi)));
        assertInstanceOf(LlamaForCausalLM.class, ModelRegistry.find(ModelConfig.parse(deepSeek)));
    }

    @Test
    void mistralWithAWindowWiderThanThePromptIsLlama() throws IOException {
        Golden asMistral = llamaGoldenAs("MistralForCausalLM", config -> config.put("sliding_window", 4096));
        GoldenChecks.logitsMatchAtEveryPosition(asMistral);
    }

    @Test
    void aSlidingWindowChangesOnlyThePositionsBeyondIt() throws IOException {
        Golden windowed = llamaGoldenAs("MistralForCausalLM", config -> config.put("sliding_window", 16));
        double[] errors = GoldenChecks.relativeLogitErrors(windowed)[2]; // the 45-token prompt
        for (int p = 0; p < 16; p++) {
            assertTrue(errors[p] < 1e-4, "position " + p + " sees its whole context, error " + errors[p]);
        }
        for (int p = 16; p < errors.length; p++) {
            assertTrue(errors[p] > 1e-4, "position " + p + " no longer sees position " + (p - 16) + ", error " + errors[p]);
        }
    }

    @Test
    void mistralWithANullWindowIsLlama() throws IOException {
        Golden noWindow = llamaGoldenAs("MistralForCausalLM", config -> config.putNull("sliding_window"));
        GoldenChecks.logitsMatchAtEveryPosition(noWindow);
    }

    @Test
    void qwenSlidesOnlyWithUseSlidingWindowAndFromMaxWindowLayersOn() {
        ModelConfig qwen = ModelConfig.parse("""
                {"num_hidden_layers": 4, "use_sliding_window": true, "sliding_window": 16, "max_window_layers": 2}""");
        assertEquals("[0, 0, 16, 16]", Arrays.toString(SlidingWindows.qwen(qwen)));
        ModelConfig unused = ModelConfig.parse("""
                {"num_hidden_layers": 2, "use_sliding_window": false, "sliding_window": 16, "max_window_layers": 0}""");
        assertEquals("[0, 0]", Arrays.toString(SlidingWindows.qwen(unused)));
        ModelConfig typed = ModelConfig.parse("""
                {"num_hidden_layers": 2, "use_sliding_window": true, "sliding_window": 16, "max_window_layers": 28,
                 "layer_types": ["sliding_attention", "full_attention"]}""");
        assertEquals("[16, 0]", Arrays.toString(SlidingWindows.qwen(typed)));
    }

    @Test
    void gemma2AlternatesSlidingAndGlobalLayersUnlessLayerTypesSayOtherwise() {
        ModelConfig plain = ModelConfig.parse("{\"num_hidden_layers\": 4, \"sliding_window\": 16}");
        assertEquals("[16, 0, 16, 0]", Arrays.toString(SlidingWindows.alternating(plain)));
        ModelConfig absent = ModelConfig.parse("{\"num_hidden_layers\": 2}");
        assertEquals("[4096, 0]", Arrays.toString(SlidingWindows.alternating(absent)));
    }

    @Test
    void gemmaScalesEmbeddingsBySqrtHiddenRoundedToTheCheckpointType() {
        assertEquals(55.5f, GemmaForCausalLM.normalizer(ModelConfig.parse("{\"hidden_size\": 3072, \"torch_dtype\": \"bfloat16\"}")));
        assertEquals((float) Math.sqrt(3072), GemmaForCausalLM.normalizer(ModelConfig.parse("{\"hidden_size\": 3072, \"dtype\": \"float32\"}")));
    }

    /** A copy of the llama-gqa golden case whose config.json names another architecture, edited further by {@code edit}. */
    private Golden llamaGoldenAs(String architecture, Consumer<ObjectNode> edit) throws IOException {
        Path source = Golden.root().resolve("llama-gqa");
        Path copy = Files.createDirectories(temp.resolve("llama-gqa-as-" + architecture));
        try (var files = Files.list(source)) {
            for (Path file : files.toList()) {
                Files.copy(file, copy.resolve(file.getFileName()));
            }
        }
        ObjectMapper json = new ObjectMapper();
        ObjectNode config = (ObjectNode) json.readTree(copy.resolve("config.json").toFile());
        config.putArray("architectures").add(architecture);
        edit.accept(config);
        json.writeValue(copy.resolve("config.json").toFile(), config);
        return Golden.load(copy);
    }
}
