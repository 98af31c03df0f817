package dev.jvllm.config;

import dev.jvllm.weights.DType;
import org.junit.jupiter.api.Named;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;
import java.util.function.Function;
import java.util.stream.Stream;

import static dev.jvllm.MessageAssertions.assertThrowsNaming;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ModelConfigTest {

    private static final String LLAMA = """
            {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 2048,
             "intermediate_size": 8192, "num_hidden_layers": 16, "num_attention_heads": 32,
             "num_key_value_heads": 8, "vocab_size": 128256, "max_position_embeddings": 131072,
             "rms_norm_eps": 1e-5, "tie_word_embeddings": true, "hidden_act": "silu", "torch_dtype": "bfloat16"}""";

    @Test
    void readsTheFieldsEveryDecoderShares() {
        ModelConfig config = ModelConfig.parse(LLAMA);

        assertEquals(List.of("LlamaForCausalLM"), config.architectures());
        assertEquals("llama", config.modelType());
        assertEquals(2048, config.hiddenSize());
        assertEquals(8192, config.intermediateSize());
        assertEquals(16, config.numLayers());
        assertEquals(32, config.numHeads());
        assertEquals(8, config.numKvHeads());
        assertEquals(64, config.headDim());
        assertEquals(128256, config.vocabSize());
        assertEquals(131072, config.maxPositionEmbeddings());
        assertEquals(1e-5, config.rmsNormEps());
        assertTrue(config.tieWordEmbeddings());
        assertEquals("silu", config.hiddenAct());
        assertEquals(Optional.of(DType.BF16), config.dtype());
    }

    @Test
    void fallsBackToTheNamesOtherFamiliesUse() {
        ModelConfig gpt2 = ModelConfig.parse("""
                {"n_embd": 768, "n_inner": 3072, "n_layer": 12, "n_head": 12, "n_positions": 1024,
                 "layer_norm_epsilon": 1e-5, "activation_function": "gelu_new", "vocab_size": 50257}""");

        assertEquals(768, gpt2.hiddenSize());
        assertEquals(3072, gpt2.intermediateSize());
        assertEquals(12, gpt2.numLayers());
        assertEquals(12, gpt2.numHeads());
        assertEquals(1024, gpt2.maxPositionEmbeddings());
        assertEquals(1e-5, gpt2.rmsNormEps());
        assertEquals("gelu_new", gpt2.hiddenAct());
    }

    @Test
    void defaultsForOptionalFields() {
        ModelConfig config = ModelConfig.parse("{\"hidden_size\": 64, \"num_attention_heads\": 4}");

        assertEquals(4, config.numKvHeads());
        assertEquals(2048, config.maxPositionEmbeddings());
        assertEquals(1e-6, config.rmsNormEps());
        assertFalse(config.tieWordEmbeddings());
        assertEquals("silu", config.hiddenAct());
        assertEquals(Optional.empty(), config.dtype());
        assertEquals("", config.modelType());
    }

    @Test
    void explicitHeadDimWinsOverHiddenSizeOverHeads() {
        ModelConfig qwen3 = ModelConfig.parse("{\"hidden_size\": 1024, \"num_attention_heads\": 16, \"head_dim\": 128}");

        assertEquals(128, qwen3.headDim());
    }

    @Test
    void headDimCannotBeDerivedWhenHeadsDoNotDivideTheHiddenSize() {
        ModelConfig config = ModelConfig.parse("{\"hidden_size\": 1000, \"num_attention_heads\": 16}");

        assertThrowsNaming(ConfigException.class, config::headDim, "hidden_size", "num_attention_heads", "head_dim");
    }

    @Test
    void keyValueHeadsMustDivideTheQueryHeads() {
        ModelConfig config = ModelConfig.parse("{\"num_attention_heads\": 32, \"num_key_value_heads\": 6}");

        assertThrowsNaming(ConfigException.class, config::numKvHeads, "num_key_value_heads", "32");
    }

    @Test
    void newerDtypeFieldWinsOverTorchDtype() {
        assertEquals(Optional.of(DType.F16), ModelConfig.parse("{\"dtype\": \"float16\", \"torch_dtype\": \"float32\"}").dtype());
        assertEquals(Optional.of(DType.F32), ModelConfig.parse("{\"torch_dtype\": \"torch.float32\"}").dtype());
    }

    @Test
    void remoteCodeIsDetectedFromAutoMapOrTrustRemoteCode() {
        assertTrue(ModelConfig.parse("{\"auto_map\": {\"AutoModelForCausalLM\": \"modeling_x.XForCausalLM\"}}").hasRemoteCode());
        assertTrue(ModelConfig.parse("{\"trust_remote_code\": true}").hasRemoteCode());
        assertFalse(ModelConfig.parse("{\"trust_remote_code\": false}").hasRemoteCode());
        assertFalse(ModelConfig.parse(LLAMA).hasRemoteCode());
    }

    @Test
    void missingRequiredFieldIsNamed() {
        ModelConfig config = ModelConfig.parse("{\"num_attention_heads\": 4}");

        assertThrowsNaming(ConfigException.class, config::hiddenSize, "config.json", "'hidden_size'", "missing");
    }

    @ParameterizedTest
    @MethodSource("badFields")
    void wrongTypedOrOutOfRangeFieldIsNamed(String json, Function<ModelConfig, ?> accessor, String expected) {
        ModelConfig config = ModelConfig.parse(json);

        assertThrowsNaming(ConfigException.class, () -> accessor.apply(config), "config.json", expected);
    }

    static Stream<Arguments> badFields() {
        return Stream.of(
                bad("{\"hidden_size\": \"2048\"}", "hiddenSize", ModelConfig::hiddenSize, "'hidden_size' must be an integer"),
                bad("{\"hidden_size\": 2048.5}", "hiddenSize", ModelConfig::hiddenSize, "'hidden_size' must be an integer"),
                bad("{\"hidden_size\": 0}", "hiddenSize", ModelConfig::hiddenSize, "'hidden_size' must be positive"),
                bad("{\"n_embd\": -1}", "hiddenSize", ModelConfig::hiddenSize, "'n_embd' must be positive"),
                bad("{\"head_dim\": \"x\"}", "headDim", ModelConfig::headDim, "'head_dim' must be an integer"),
                bad("{\"rms_norm_eps\": \"1e-6\"}", "rmsNormEps", ModelConfig::rmsNormEps, "'rms_norm_eps' must be a number"),
                bad("{\"hidden_act\": 1}", "hiddenAct", ModelConfig::hiddenAct, "'hidden_act' must be a string"),
                bad("{\"torch_dtype\": 16}", "dtype", ModelConfig::dtype, "'torch_dtype' must be a string"));
    }

    private static Arguments bad(String json, String accessorName, Function<ModelConfig, ?> accessor, String expected) {
        return Arguments.of(json, Named.of(accessorName, accessor), expected);
    }

    @Test
    void documentThatIsNotOneJsonObjectIsRefused(@TempDir Path dir) throws Exception {
        assertThrowsNaming(ConfigException.class, () -> ModelConfig.parse("[1]"), "JSON object");
        Files.writeString(dir.resolve("config.json"), "{\"hidden_size\": 8} {}");
        assertThrowsNaming(ConfigException.class, () -> ModelConfig.load(dir), dir.resolve("config.json").toString());
    }

    @Test
    void missingConfigFileIsNamed(@TempDir Path dir) {
        assertThrowsNaming(ConfigException.class, () -> ModelConfig.load(dir), dir.resolve("config.json").toString(),
                "not found");
    }
}
