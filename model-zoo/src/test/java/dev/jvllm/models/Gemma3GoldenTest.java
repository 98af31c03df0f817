package dev.jvllm.models;

import dev.jvllm.config.ModelConfig;
import dev.jvllm.config.RopeConfig;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * Gemma 3 against Transformers' float32 outputs: every case of tools/reference/cases/gemma3.py
 * (sliding and global layers with their own rotary bases, the global one linearly scaled; q/k norms).
 */
class Gemma3GoldenTest extends GoldenCaseFileTest {

    Gemma3GoldenTest() {
        super("gemma3.py");
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
