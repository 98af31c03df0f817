package dev.jvllm.models;

import dev.jvllm.LLM;
import dev.jvllm.config.ModelConfig;
import dev.jvllm.spi.ModelRegistry;
import org.junit.jupiter.api.Test;

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
    void missingArchitecturesFieldIsNamed() {
        var e = assertThrows(ModelRegistry.UnsupportedArchitectureException.class,
                () -> ModelRegistry.find(ModelConfig.parse("{\"model_type\": \"llama\"}")));
        assertTrue(e.getMessage().contains("'architectures'"), e.getMessage());
    }
}
