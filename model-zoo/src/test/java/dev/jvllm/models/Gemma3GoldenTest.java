package dev.jvllm.models;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.jvllm.LLM;
import dev.jvllm.config.ModelConfig;
import dev.jvllm.config.RopeConfig;
import dev.jvllm.ImageInput;
import dev.jvllm.InvalidRequestException;
import dev.jvllm.Prompt;
import dev.jvllm.SamplingParams;
import dev.jvllm.weights.SafetensorsTestWriter;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Iterator;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Gemma 3 against Transformers' float32 outputs: every case of tools/reference/cases/gemma3.py
 * (sliding and global layers with their own rotary bases, the global one linearly scaled; q/k norms).
 */
class Gemma3GoldenTest extends GoldenCaseFileTest {

    Gemma3GoldenTest() {
        super("gemma3.py");
    }

    private static final ObjectMapper JSON = new ObjectMapper();

    /**
     * A multimodal Gemma 3 checkpoint (Gemma3ForConditionalGeneration) read for text: the golden text
     * model's weights under a Transformers 4 or 5 multimodal layout and its config as text_config give
     * Transformers' logits of the text model at every position; a prompt with an image is refused.
     */
    @ParameterizedTest(name = "under {0}")
    @ValueSource(strings = {"language_model.model", "model.language_model"})
    void theMultimodalCheckpointsLanguageModelGivesTheTextModelsLogits(String prefix, @TempDir Path dir) throws IOException {
        Golden golden = Golden.load(Golden.root().resolve("gemma3-local-global"));
        ObjectNode text = (ObjectNode) JSON.readTree(golden.directory().resolve("config.json").toFile());
        text.remove("architectures");
        ObjectNode config = JSON.createObjectNode();
        config.putArray("architectures").add("Gemma3ForConditionalGeneration");
        config.put("model_type", "gemma3");
        config.set("text_config", text);
        config.putObject("vision_config").put("model_type", "siglip_vision_model");
        config.put("image_token_index", 7).put("mm_tokens_per_image", 256);
        Files.writeString(dir.resolve("config.json"), config.toString());
        Files.copy(golden.directory().resolve("generation_config.json"), dir.resolve("generation_config.json"));
        renameTensors(golden.directory().resolve("model.safetensors"), dir.resolve("model.safetensors"), "model.", prefix + ".");

        float[][][] logits = GoldenChecks.prefillLogits(dir, golden.prompts(), "cpu");
        for (int i = 0; i < logits.length; i++) {
            float[][] expected = golden.prompts().get(i).logits();
            for (int p = 0; p < expected.length; p++) {
                double err = 0, norm = 0;
                for (int v = 0; v < expected[p].length; v++) {
                    err += Math.pow(logits[i][p][v] - expected[p][v], 2);
                    norm += Math.pow(expected[p][v], 2);
                }
                assertTrue(Math.sqrt(err / norm) < 1e-4, "prompt " + i + " position " + p + ": " + Math.sqrt(err / norm));
            }
        }
        try (LLM llm = LLM.builder().model(dir.toString()).device("cpu").build()) {
            var image = ImageInput.rgb(2, 2, new byte[12]);
            var refused = assertThrows(InvalidRequestException.class, () -> llm.generatePrompts(
                    List.of(Prompt.tokens(new int[]{1, 2, 3}, List.of(image))), SamplingParams.greedy()));
            assertTrue(refused.getMessage().contains("takes no images"), refused.getMessage());
        }
    }

    /** The Hub's multimodal configs name in text_config only what differs from Gemma3TextConfig's defaults. */
    @Test
    void aMultimodalConfigsTextSectionTakesGemma3TextDefaults() {
        ModelConfig hub = ModelConfig.parse("{\"architectures\": [\"Gemma3ForConditionalGeneration\"], \"model_type\": \"gemma3\", "
                + "\"text_config\": {\"hidden_size\": 2560, \"intermediate_size\": 10240, \"model_type\": \"gemma3_text\", "
                + "\"num_hidden_layers\": 34, \"rope_scaling\": {\"factor\": 8.0, \"rope_type\": \"linear\"}, \"sliding_window\": 1024}}");
        ModelConfig text = Gemma3ForConditionalGeneration.textConfig(hub);
        assertEquals(2560, text.hiddenSize());
        assertEquals(262_208, text.vocabSize());
        assertEquals(256, text.raw().path("head_dim").asInt());
        assertEquals(1024, text.raw().path("sliding_window").asInt());
        assertEquals(8, text.raw().path("num_attention_heads").asInt());
        assertEquals(10_000.0, Gemma3ForCausalLM.localRope(text).theta());
        assertEquals(8.0, text.rope().factor());
        assertEquals(131_072, new Gemma3ForConditionalGeneration().maxPositions(hub), "the default maximum model length");
    }

    /** A copy of a safetensors file whose tensor names starting with {@code from} start with {@code to} instead. */
    private static void renameTensors(Path source, Path target, String from, String to) throws IOException {
        byte[] bytes = Files.readAllBytes(source);
        long headerLength = ByteBuffer.wrap(bytes, 0, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
        JsonNode header = JSON.readTree(new String(bytes, 8, (int) headerLength, StandardCharsets.UTF_8));
        ObjectNode renamed = JSON.createObjectNode();
        for (Iterator<Map.Entry<String, JsonNode>> it = header.fields(); it.hasNext(); ) {
            var e = it.next();
            renamed.set(e.getKey().startsWith(from) ? to + e.getKey().substring(from.length()) : e.getKey(), e.getValue());
        }
        SafetensorsTestWriter.writeRaw(target, renamed.toString(), Arrays.copyOfRange(bytes, 8 + (int) headerLength, bytes.length));
    }

    /** Hub checkpoints saved before Transformers 5 state the local base beside rope_theta and rope_scaling. */
    @Test
    void theLocalBaseIsReadFromEitherSpelling() {
        ModelConfig legacy = ModelConfig.parse("{\"rope_theta\": 1000000.0, \"rope_local_base_freq\": 10000.0, "
                + "\"rope_scaling\": {\"rope_type\": \"linear\", \"factor\": 8.0}, \"max_position_embeddings\": 32768}");
        RopeConfig local = Gemma3ForCausalLM.localRope(legacy);
        assertEquals(10_000.0, local.theta());
        assertEquals("default", local.type());
        assertEquals(1.0, local.factor());
        assertEquals(1_000_000.0, legacy.rope().theta());
        assertEquals(8.0, legacy.rope().factor());
        ModelConfig perLayerType = ModelConfig.parse("{\"rope_parameters\": {\"full_attention\": {\"rope_type\": \"linear\", "
                + "\"factor\": 8.0, \"rope_theta\": 1000000.0}, \"sliding_attention\": {\"rope_type\": \"default\", "
                + "\"rope_theta\": 10000.0}}}");
        assertEquals(10_000.0, Gemma3ForCausalLM.localRope(perLayerType).theta());
        assertEquals(1.0, Gemma3ForCausalLM.localRope(perLayerType).factor());
        assertEquals(1_000_000.0, perLayerType.rope().theta());
    }
}
