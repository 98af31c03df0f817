package dev.jvllm.models.layers;

import dev.jvllm.config.ConfigException;
import dev.jvllm.config.ModelConfig;
import dev.jvllm.config.RopeConfig;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Phi-3's LongRoPE: per-pair rescale factors and the attention factor Transformers derives. */
class LongRopeTest {

    private static RopeConfig rope(String scaling) {
        return ModelConfig.parse("""
                {"max_position_embeddings": 131072, "original_max_position_embeddings": 4096,
                 "rope_theta": 10000.0, "rope_scaling": %s}""".formatted(scaling)).rope();
    }

    @Test
    void attentionFactorFollowsTheContextExtensionWhenNoFactorIsGiven() {
        RopeConfig su = rope("{\"type\": \"su\", \"short_factor\": [1, 1], \"long_factor\": [2, 4]}");
        assertEquals("longrope", su.type());
        assertEquals(32.0, su.factor());
        assertEquals(Math.sqrt(1 + Math.log(32) / Math.log(4096)), RotaryEmbedding.attentionScaling(su), 1e-12);
    }

    @Test
    void anExplicitAttentionFactorWins() {
        RopeConfig given = rope("{\"rope_type\": \"longrope\", \"attention_factor\": 1.5, \"short_factor\": [1, 1], \"long_factor\": [2, 4]}");
        assertEquals(1.5, RotaryEmbedding.attentionScaling(given));
    }

    @Test
    void eachFrequencyIsDividedByItsFactor() {
        RopeConfig longrope = rope("{\"rope_type\": \"longrope\", \"short_factor\": [1, 1], \"long_factor\": [2, 4]}");
        double[] plain = {1.0, 1.0 / 100};
        assertArrayEquals(plain, RotaryEmbedding.longRopeFrequencies(longrope, 4, "short_factor"), 1e-15);
        assertArrayEquals(new double[]{plain[0] / 2, plain[1] / 4},
                RotaryEmbedding.longRopeFrequencies(longrope, 4, "long_factor"), 1e-15);
    }

    @Test
    void factorListsMustCoverEveryRotatedPair() {
        RopeConfig shortList = rope("{\"rope_type\": \"longrope\", \"short_factor\": [1], \"long_factor\": [2, 4]}");
        var e = assertThrows(ConfigException.class, () -> RotaryEmbedding.longRopeFrequencies(shortList, 4, "short_factor"));
        assertTrue(e.getMessage().contains("short_factor"), e.getMessage());
    }
}
