package dev.jvllm.config;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import static dev.jvllm.MessageAssertions.assertThrowsNaming;
import static org.junit.jupiter.api.Assertions.assertEquals;

class RopeConfigTest {

    private static RopeConfig rope(String fields) {
        return ModelConfig.parse("{\"max_position_embeddings\": 4096" + (fields.isEmpty() ? "" : ", " + fields) + "}")
                .rope();
    }

    @Test
    void plainRopeWhenNothingIsSaid() {
        RopeConfig rope = rope("");

        assertEquals(10000.0, rope.theta());
        assertEquals("default", rope.type());
        assertEquals(1.0, rope.factor());
        assertEquals(4096, rope.originalMaxPositions());
        assertEquals(128, rope.rotaryDim(128));
    }

    @ParameterizedTest
    @CsvSource(delimiter = '|', value = {
            "\"type\": \"linear\"      | linear",
            "\"rope_type\": \"dynamic\" | dynamic",
            "\"type\": \"su\"          | longrope"})
    void ropeThetaWithRopeScalingUnderEitherTypeKey(String typeField, String expectedType) {
        RopeConfig rope = rope("\"rope_theta\": 1000000.0, \"rope_scaling\": {" + typeField + ", \"factor\": 2.0}");

        assertEquals(1_000_000.0, rope.theta());
        assertEquals(expectedType, rope.type());
        assertEquals(2.0, rope.factor());
    }

    @Test
    void llama3ScalingKeepsItsFrequencyBands() {
        RopeConfig rope = rope("""
                "rope_theta": 500000.0, "rope_scaling": {"rope_type": "llama3", "factor": 32.0,
                 "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}""");

        assertEquals("llama3", rope.type());
        assertEquals(500000.0, rope.theta());
        assertEquals(32.0, rope.factor());
        assertEquals(8192, rope.originalMaxPositions());
        assertEquals(1.0, rope.param("low_freq_factor", 0));
        assertEquals(4.0, rope.param("high_freq_factor", 0));
        assertEquals(0.5, rope.param("beta_slow", 0.5));
    }

    @Test
    void ropeParametersCarryTheThetaThemselves() {
        RopeConfig rope = rope("""
                "rope_theta": 1.0, "rope_parameters": {"rope_type": "yarn", "rope_theta": 1000000.0, "factor": 4.0,
                 "original_max_position_embeddings": 32768}""");

        assertEquals("yarn", rope.type());
        assertEquals(1_000_000.0, rope.theta());
        assertEquals(4.0, rope.factor());
        assertEquals(32768, rope.originalMaxPositions());
    }

    @Test
    void perLayerTypeRopeParametersUseTheFullAttentionSet() {
        RopeConfig rope = rope("""
                "rope_parameters": {
                  "full_attention": {"rope_type": "linear", "rope_theta": 1000000.0, "factor": 8.0},
                  "sliding_attention": {"rope_type": "default", "rope_theta": 10000.0}}""");

        assertEquals("linear", rope.type());
        assertEquals(1_000_000.0, rope.theta());
        assertEquals(8.0, rope.factor());
    }

    @Test
    void partialRotaryFactorRotatesAnEvenShareOfTheHead() {
        assertEquals(64, rope("\"partial_rotary_factor\": 0.5").rotaryDim(128));
        assertEquals(24, rope("\"partial_rotary_factor\": 0.25").rotaryDim(100));
    }

    @ParameterizedTest
    @CsvSource(delimiter = '|', value = {
            "\"rope_scaling\": \"linear\"                  | 'rope_scaling' must be an object",
            "\"rope_scaling\": {\"factor\": \"2\"}         | 'rope_scaling.factor' must be a number",
            "\"rope_scaling\": {\"factor\": 0}             | 'rope_scaling.factor' must be positive",
            "\"rope_scaling\": {\"type\": 3}               | 'rope_scaling.type' must be a string",
            "\"rope_theta\": -1                             | 'rope_theta' must be positive",
            "\"rope_scaling\": {\"rope_theta\": 0}       | 'rope_scaling.rope_theta' must be positive",
            "\"rope_parameters\": {\"rope_theta\": \"big\"} | 'rope_parameters.rope_theta' must be a number",
            "\"partial_rotary_factor\": 1.5                 | field 'partial_rotary_factor' must be in (0, 1]"})
    void badRopeFieldIsNamed(String fields, String expected) {
        assertThrowsNaming(ConfigException.class, () -> rope(fields), "config.json", expected);
    }
}
