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
    void missingArchitecturesFieldIsNamed() {
        var e = assertThrows(ModelRegistry.UnsupportedArchitectureException.class,
                () -> ModelRegistry.find(ModelConfig.parse("{\"model_type\": \"llama\"}")));
        assertTrue(e.getMessage().contains("'architectures'"), e.getMessage());
    }
}
