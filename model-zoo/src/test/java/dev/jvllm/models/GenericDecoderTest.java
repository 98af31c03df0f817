package dev.jvllm.models;

import dev.jvllm.LLM;
import dev.jvllm.config.ModelConfig;
import dev.jvllm.spi.ModelRegistry;
import dev.jvllm.spi.ModelRegistry.UnsupportedArchitectureException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The generic decoder on checkpoints of families jvllm knows, presented as a family it does not
 * (architectures and model_type renamed): it must find their layout from the tensor names and give
 * Transformers' logits; and what it cannot place, it refuses by name.
 */
class GenericDecoderTest {

    private static final String UNKNOWN = "UnheardOfForCausalLM";

    private static Golden renamed(String goldenCase, Path dir) {
        return RepackedGolden.of(goldenCase).write(dir, UNKNOWN, GenericDecoderTest::unknownType);
    }

    /** A model_type no class is chosen by, as the architecture name is one none serves. */
    private static void unknownType(com.fasterxml.jackson.databind.node.ObjectNode config) {
        config.put("model_type", "unheard_of");
    }

    /**
     * Llama with grouped queries and with biases on every projection, Qwen2 (q/k/v biases, tied
     * embeddings), Qwen3 (per-head q/k norms, sliding layers by layer_types), Phi-3 (fused qkv_proj
     * and gate_up_proj), Mistral (a sliding window on every layer), Mixtral (experts renormalized)
     * Qwen2-MoE (with the gated shared expert in every layer; without it, every other layer sparse) and Qwen3-MoE
     * (a dense first layer).
     */
    @ParameterizedTest
    @ValueSource(strings = {"llama-gqa", "llama-bias", "qwen2-tied", "qwen3-qk-norm", "qwen3-bias-layer-types", "phi3-fused",
            "mistral-sliding", "mixtral-top1", "mixtral-top2", "qwen2-moe-shared", "qwen2-moe-no-shared", "qwen3-moe"})
    void knownLayoutsUnderAnUnknownNameLoadGenericallyWithTransformersLogits(String goldenCase, @TempDir Path dir) {
        Golden golden = renamed(goldenCase, dir);
        assertInstanceOf(GenericDecoderForCausalLM.class, ModelRegistry.find(ModelConfig.load(dir)));
        GoldenChecks.logitsMatchAtEveryPosition(golden);
        GoldenChecks.greedyTokensMatch(golden);
    }

    /** {@code llm.embed} on an unknown decoder: the generic decoder pools as Llama's class does. */
    @Test
    void anUnknownDecoderEmbedsAsItsKnownTwin(@TempDir Path dir) {
        Golden golden = renamed("llama-gqa", dir);
        List<dev.jvllm.Prompt> prompts = golden.prompts().stream().map(p -> dev.jvllm.Prompt.tokens(p.tokenIds())).toList();
        dev.jvllm.PoolingParams raw = dev.jvllm.PoolingParams.builder().normalize(false).build();
        List<dev.jvllm.EmbeddingOutput> expected, actual;
        try (LLM llm = LLM.builder().model(Golden.root().resolve("llama-gqa").toString()).device("cpu")
                .task(dev.jvllm.Task.EMBED).maxModelLen(128).build()) {
            expected = llm.encode(prompts, raw);
        }
        try (LLM llm = LLM.builder().model(dir.toString()).device("cpu").task(dev.jvllm.Task.EMBED).maxModelLen(128).build()) {
            actual = llm.encode(prompts, raw);
        }
        for (int i = 0; i < prompts.size(); i++) {
            org.junit.jupiter.api.Assertions.assertArrayEquals(expected.get(i).embedding(), actual.get(i).embedding(), 1e-6f,
                    "prompt " + i);
        }
    }

    @Test
    void aTensorWithNoPlaceIsRefusedByName(@TempDir Path dir) {
        RepackedGolden.of("llama-gqa").copy("model.layers.1.input_layernorm.weight", "model.layers.1.post_feedforward_layernorm.weight")
                .write(dir, UNKNOWN, GenericDecoderTest::unknownType);
        var e = assertThrows(UnsupportedArchitectureException.class, () -> load(dir));
        assertTrue(e.getMessage().contains("model.layers.1.post_feedforward_layernorm.weight"), e.getMessage());
        assertTrue(e.getMessage().contains(UNKNOWN), e.getMessage());
    }

    @Test
    void aLayerWithoutWhatLayerZeroHoldsIsRefusedByName(@TempDir Path dir) {
        RepackedGolden.of("llama-gqa").remove("model.layers.1.mlp.gate_proj.weight").write(dir, UNKNOWN, GenericDecoderTest::unknownType);
        var e = assertThrows(UnsupportedArchitectureException.class, () -> load(dir));
        assertTrue(e.getMessage().contains("lacks model.layers.1.mlp.gate_proj.weight"), e.getMessage());
    }

    /** A layer count the checkpoint does not hold is refused at once, however large. */
    @Test
    void aLayerCountTheCheckpointDoesNotHoldIsRefused(@TempDir Path dir) {
        RepackedGolden.of("llama-gqa").write(dir, UNKNOWN, config -> {
            unknownType(config);
            config.put("num_hidden_layers", 2_000_000_000);
        });
        var e = assertThrows(UnsupportedArchitectureException.class, () -> load(dir));
        assertTrue(e.getMessage().contains("num_hidden_layers is 2000000000"), e.getMessage());
    }

    /** A parallel block (no norm before the MLP) is not the pre-norm decoder the generic class builds. */
    @Test
    void aLayoutWithoutTheNormBeforeTheMlpIsRefused(@TempDir Path dir) {
        RepackedGolden golden = RepackedGolden.of("llama-gqa");
        for (int layer = 0; layer < 2; layer++) golden.remove("model.layers." + layer + ".post_attention_layernorm.weight");
        golden.write(dir, UNKNOWN, GenericDecoderTest::unknownType);
        var e = assertThrows(UnsupportedArchitectureException.class, () -> load(dir));
        assertTrue(e.getMessage().contains("post_attention_layernorm.weight"), e.getMessage());
    }

    /** Granite's multipliers, soft-capping and the like change the math with no tensor to show it. */
    @Test
    void configFieldsWhoseMeaningTheTensorsDoNotShowAreRefusedByName(@TempDir Path dir) {
        for (String field : new String[]{"\"residual_multiplier\": 0.22", "\"final_logit_softcapping\": 30.0",
                "\"use_parallel_residual\": true", "\"n_routed_experts\": 8"}) {
            String name = field.substring(1, field.indexOf('"', 1));
            ModelConfig config = ModelConfig.parse("{\"architectures\": [\"" + UNKNOWN + "\"], \"hidden_size\": 64, "
                    + "\"num_attention_heads\": 4, \"num_hidden_layers\": 2, \"vocab_size\": 512, \"intermediate_size\": 128, "
                    + field + "}");
            var e = assertThrows(UnsupportedArchitectureException.class, () -> ModelRegistry.find(config), field);
            assertTrue(e.getMessage().contains("'" + name + "'") && e.getMessage().contains("generic decoder"), e.getMessage());
        }
        ModelConfig neutral = ModelConfig.parse("{\"architectures\": [\"" + UNKNOWN + "\"], \"hidden_size\": 64, "
                + "\"num_attention_heads\": 4, \"num_hidden_layers\": 2, \"vocab_size\": 512, \"intermediate_size\": 128, "
                + "\"residual_multiplier\": 1.0, \"use_parallel_residual\": false, \"final_logit_softcapping\": null}");
        assertInstanceOf(GenericDecoderForCausalLM.class, ModelRegistry.find(neutral), "neutral values change nothing");
    }

    @Test
    void onlyCausalLmsAreTakenGenerically() {
        ModelConfig encoder = ModelConfig.parse("{\"architectures\": [\"UnheardOfModel\"], \"hidden_size\": 64, "
                + "\"num_attention_heads\": 4, \"num_hidden_layers\": 2, \"vocab_size\": 512, \"intermediate_size\": 128}");
        var e = assertThrows(UnsupportedArchitectureException.class, () -> ModelRegistry.find(encoder));
        assertTrue(e.getMessage().contains("UnheardOfModel") && e.getMessage().contains("ForCausalLM"), e.getMessage());
    }

    private static void load(Path dir) {
        try (LLM ignored = LLM.builder().model(dir.toString()).device("cpu").maxModelLen(64).build()) {
            throw new AssertionError("loaded");
        }
    }
}
