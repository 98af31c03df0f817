package dev.jvllm.models;

import dev.jvllm.LLM;
import dev.jvllm.config.ModelConfig;
import dev.jvllm.spi.ModelRegistry;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class RegistryTest {

    @Test
    void architecturesFieldPicksTheModelClass() {
        ModelConfig config = ModelConfig.parse("{\"architectures\": [\"LlamaForCausalLM\"]}");
        assertInstanceOf(LlamaForCausalLM.class, ModelRegistry.find(config));
        assertTrue(LLM.supportedArchitectures().contains("LlamaForCausalLM"));
    }

    @Test
    void unknownArchitectureFailsListingTheSupportedOnes() {
        ModelConfig config = ModelConfig.parse("{\"architectures\": [\"FancyNewForCausalLM\"]}");
        var e = assertThrows(ModelRegistry.UnsupportedArchitectureException.class, () -> ModelRegistry.find(config));
        assertTrue(e.getMessage().contains("FancyNewForCausalLM"), e.getMessage());
        assertTrue(e.getMessage().contains("LlamaForCausalLM"), e.getMessage());
    }

    /** A classifier of a family jvllm does not classify with is refused, not loaded by its model_type as a generator. */
    @Test
    void anUnservedTaskHeadIsRefusedRatherThanLoadedAsItsFamilysLanguageModel() {
        assertInstanceOf(DecoderSequenceClassification.class, ModelRegistry.find(ModelConfig.parse(
                "{\"architectures\": [\"Qwen2ForSequenceClassification\"], \"model_type\": \"qwen2\"}")));
        var e = assertThrows(ModelRegistry.UnsupportedArchitectureException.class, () -> ModelRegistry.find(ModelConfig.parse(
                "{\"architectures\": [\"GemmaForSequenceClassification\"], \"model_type\": \"gemma\"}")));
        assertTrue(e.getMessage().contains("GemmaForSequenceClassification") && e.getMessage().contains("Qwen2ForSequenceClassification"),
                e.getMessage());
        for (String head : List.of("BertForTokenClassification", "Qwen2ForRewardModel", "Qwen2ForProcessRewardModel", "LlamaForRewardModelWithGating")) {
            assertThrows(ModelRegistry.UnsupportedArchitectureException.class, () -> ModelRegistry.find(ModelConfig.parse(
                    "{\"architectures\": [\"" + head + "\"], \"model_type\": \"qwen2\"}")), head);
        }
    }

    @Test
    void aBuilderWithoutAModelSaysSo() {
        var e = assertThrows(dev.jvllm.JvllmException.class, () -> LLM.builder().build());
        assertTrue(e.getMessage().startsWith("no model given"), e.getMessage());
    }

    /** As Transformers' Auto classes: an unknown or missing class name falls back on model_type, unless custom code is declared. */
    @Test
    void aCheckpointWhoseArchitecturesNameNoServedClassIsLoadedByItsModelType() {
        assertInstanceOf(LlamaForCausalLM.class, ModelRegistry.find(ModelConfig.parse(
                "{\"architectures\": [\"LlamaForCausalLMWithValueHead\"], \"model_type\": \"llama\"}")));
        assertInstanceOf(MistralForCausalLM.class, ModelRegistry.find(ModelConfig.parse("{\"model_type\": \"mistral\"}")));
        assertInstanceOf(LlavaNextForConditionalGeneration.class, ModelRegistry.find(ModelConfig.parse("{\"model_type\": \"llava_next\"}")));
        var custom = assertThrows(ModelRegistry.UnsupportedArchitectureException.class, () -> ModelRegistry.find(ModelConfig.parse(
                "{\"architectures\": [\"MyLlamaForCausalLM\"], \"model_type\": \"llama\", \"auto_map\": {\"AutoModelForCausalLM\": \"m.MyLlama\"}}")));
        assertTrue(custom.getMessage().contains("declares custom code"), custom.getMessage());
        var unknown = assertThrows(ModelRegistry.UnsupportedArchitectureException.class,
                () -> ModelRegistry.find(ModelConfig.parse("{\"model_type\": \"fancy_new\"}")));
        assertTrue(unknown.getMessage().contains("model_type 'fancy_new'"), unknown.getMessage());
    }

    /** The fallback loads the same model: a golden Llama whose config names an unknown class gives its tokens. */
    @Test
    void aGoldenLlamaUnderAnUnknownClassNameGeneratesAsItself(@org.junit.jupiter.api.io.TempDir java.nio.file.Path dir) throws Exception {
        java.nio.file.Path golden = Golden.root().resolve("llama-gqa");
        for (String file : List.of("model.safetensors", "generation_config.json")) {
            java.nio.file.Files.copy(golden.resolve(file), dir.resolve(file));
        }
        String config = java.nio.file.Files.readString(golden.resolve("config.json"))
                .replace("\"LlamaForCausalLM\"", "\"LlamaForCausalLMWithValueHead\"");
        assertTrue(config.contains("LlamaForCausalLMWithValueHead"));
        java.nio.file.Files.writeString(dir.resolve("config.json"), config);
        dev.jvllm.SamplingParams greedy = dev.jvllm.SamplingParams.builder().temperature(0).ignoreEos(true).maxTokens(16).build();
        Golden.Prompt prompt = Golden.load(golden).prompts().get(2);
        try (LLM llm = LLM.builder().model(dir.toString()).device("cpu").maxModelLen(128).build()) {
            org.junit.jupiter.api.Assertions.assertArrayEquals(prompt.greedyTokenIds(),
                    llm.generate(prompt.tokenIds(), greedy).outputs().getFirst().tokenIdArray());
        }
    }

    @Test
    void quantizedCheckpointsJvllmCannotReadAreRefusedNamingTheirMethodAndWhy() {
        for (String[] quantized : new String[][]{
                {"\"quantization_config\": {\"quant_method\": \"hqq\"}", "hqq", "float8, GPTQ, AWQ and bitsandbytes"},
                {"\"quantization_config\": {\"quant_method\": \"bitsandbytes\", \"load_in_4bit\": true, \"bnb_4bit_quant_storage\": "
                        + "\"bfloat16\"}", "bitsandbytes", "stored as bfloat16"},
                {"\"quantization_config\": {\"quant_method\": \"bitsandbytes\"}", "bitsandbytes", "neither of load_in_4bit"},
                {"\"quantization_config\": {\"quant_method\": \"gptq\", \"bits\": 3}", "gptq", "3 bits"},
                {"\"quantization_config\": {\"quant_method\": \"gptq\", \"bits\": 4, \"checkpoint_format\": \"marlin\"}", "gptq", "'marlin'"},
                {"\"quantization_config\": {\"quant_method\": \"awq\", \"bits\": 4, \"version\": \"gemv\"}", "awq", "'gemv'"},
                {"\"quantization_config\": {\"quant_method\": \"compressed-tensors\", \"config_groups\": {\"group_0\": "
                        + "{\"weights\": {\"type\": \"int\", \"num_bits\": 4}}}}", "compressed-tensors", "float8, GPTQ, AWQ and bitsandbytes"},
                {"\"compression_config\": {\"format\": \"int-quantized\"}", "int-quantized", "float8, GPTQ, AWQ and bitsandbytes"}}) {
            ModelConfig config = ModelConfig.parse("{\"architectures\": [\"LlamaForCausalLM\"], " + quantized[0] + "}");
            var e = assertThrows(ModelRegistry.UnsupportedQuantizationException.class, () -> ModelRegistry.find(config));
            assertTrue(e.getMessage().contains("'" + quantized[1] + "'") && e.getMessage().contains(quantized[2])
                    && e.getMessage().contains("unquantized"), e.getMessage());
        }
    }

    @Test
    void float8GptqAwqAndBitsAndBytesCheckpointsAreServed() {
        for (String quantized : List.of("\"quantization_config\": {\"quant_method\": \"fp8\", \"activation_scheme\": \"dynamic\"}",
                "\"quantization_config\": {\"quant_method\": \"compressed-tensors\", \"config_groups\": {\"group_0\": "
                        + "{\"weights\": {\"type\": \"float\", \"num_bits\": 8}}}}",
                "\"quantization_config\": {\"quant_method\": \"gptq\", \"bits\": 4, \"group_size\": 128, \"desc_act\": true}",
                "\"quantization_config\": {\"quant_method\": \"gptq\", \"bits\": 8, \"checkpoint_format\": \"gptq_v2\"}",
                "\"quantization_config\": {\"quant_method\": \"awq\", \"bits\": 4, \"group_size\": 128, \"zero_point\": true, "
                        + "\"version\": \"GEMM\"}",
                "\"quantization_config\": {\"quant_method\": \"bitsandbytes\", \"load_in_4bit\": true, \"bnb_4bit_quant_type\": \"nf4\"}",
                "\"quantization_config\": {\"quant_method\": \"bitsandbytes\", \"load_in_8bit\": true}")) {
            ModelConfig config = ModelConfig.parse("{\"architectures\": [\"LlamaForCausalLM\"], " + quantized + "}");
            assertInstanceOf(LlamaForCausalLM.class, ModelRegistry.find(config));
        }
    }

    @Test
    void missingArchitecturesFieldIsNamedWhereModelTypeDoesNotChooseEither() {
        var e = assertThrows(ModelRegistry.UnsupportedArchitectureException.class,
                () -> ModelRegistry.find(ModelConfig.parse("{\"hidden_size\": 64}")));
        assertTrue(e.getMessage().contains("no 'architectures' field, and no 'model_type'"), e.getMessage());
    }
}
