package dev.jvllm.config;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.OptionalDouble;
import java.util.OptionalInt;

import static dev.jvllm.MessageAssertions.assertThrowsNaming;
import static org.junit.jupiter.api.Assertions.assertEquals;

class GenerationConfigTest {

    @TempDir
    Path dir;

    private GenerationConfig load(String configJson, String generationJson) throws Exception {
        Files.writeString(dir.resolve("config.json"), configJson);
        if (generationJson != null) {
            Files.writeString(dir.resolve("generation_config.json"), generationJson);
        }
        return GenerationConfig.load(dir, ModelConfig.load(dir));
    }

    @Test
    void singleEosIdAndSamplingDefaults() throws Exception {
        GenerationConfig gen = load("{}", """
                {"bos_token_id": 1, "eos_token_id": 2, "temperature": 0.6, "top_p": 0.9, "top_k": 20,
                 "repetition_penalty": 1.05, "max_new_tokens": 512}""");

        assertEquals(List.of(2), gen.eosTokenIds());
        assertEquals(OptionalInt.of(1), gen.bosTokenId());
        assertEquals(OptionalDouble.of(0.6), gen.temperature());
        assertEquals(OptionalDouble.of(0.9), gen.topP());
        assertEquals(OptionalInt.of(20), gen.topK());
        assertEquals(OptionalDouble.of(1.05), gen.repetitionPenalty());
        assertEquals(OptionalInt.of(512), gen.maxNewTokens());
    }

    @Test
    void listOfEosIds() throws Exception {
        GenerationConfig gen = load("{}", "{\"eos_token_id\": [128001, 128008, 128009]}");

        assertEquals(List.of(128001, 128008, 128009), gen.eosTokenIds());
    }

    @Test
    void withoutTheFileTheIdsComeFromConfigJson() throws Exception {
        GenerationConfig gen = load("{\"bos_token_id\": 1, \"eos_token_id\": [2, 3]}", null);

        assertEquals(List.of(2, 3), gen.eosTokenIds());
        assertEquals(OptionalInt.of(1), gen.bosTokenId());
        assertEquals(OptionalDouble.empty(), gen.temperature());
    }

    @Test
    void generationConfigWinsOverConfigJsonAndNullMeansAbsent() throws Exception {
        GenerationConfig gen = load("{\"bos_token_id\": 1, \"eos_token_id\": 2}",
                "{\"bos_token_id\": null, \"eos_token_id\": 7}");

        assertEquals(List.of(7), gen.eosTokenIds());
        assertEquals(OptionalInt.of(1), gen.bosTokenId());
    }

    @Test
    void wrongTypedSamplingFieldIsNamedWithItsFile() {
        assertThrowsNaming(ConfigException.class, () -> load("{}", "{\"temperature\": \"0.7\"}"),
                dir.resolve("generation_config.json").toString(), "'temperature' must be a number");
    }

    @Test
    void badEosIdIsNamedWithTheFileItCameFrom() {
        assertThrowsNaming(ConfigException.class, () -> load("{\"eos_token_id\": [2, \"</s>\"]}", null),
                dir.resolve("config.json").toString(), "'eos_token_id' must be an integer");
        assertThrowsNaming(ConfigException.class, () -> load("{}", "{\"eos_token_id\": -1}"),
                dir.resolve("generation_config.json").toString(), "'eos_token_id' must hold non-negative");
    }

    @Test
    void generationConfigThatIsNotAnObjectIsRefused() {
        assertThrowsNaming(ConfigException.class, () -> load("{}", "[2]"),
                dir.resolve("generation_config.json").toString(), "JSON object");
    }
}
