package dev.jvllm.config;

import dev.jvllm.pooling.PoolingType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class PoolingConfigTest {

    @TempDir
    Path dir;

    private static final ModelConfig PLAIN = ModelConfig.parse("{\"architectures\": [\"BertModel\"]}");

    private void modules(String poolingPath, boolean normalize, String poolingJson) throws IOException {
        String normalizeModule = normalize ? ", {\"idx\": 2, \"path\": \"2_Normalize\", \"type\": \"sentence_transformers.models.Normalize\"}" : "";
        Files.writeString(dir.resolve("modules.json"), "[{\"idx\": 0, \"path\": \"\", \"type\": \"sentence_transformers.models.Transformer\"},"
                + "{\"idx\": 1, \"path\": \"" + poolingPath + "\", \"type\": \"sentence_transformers.models.Pooling\"}" + normalizeModule + "]");
        if (!poolingPath.contains("..") && !poolingPath.startsWith("/")) {
            Files.createDirectories(dir.resolve(poolingPath));
            Files.writeString(dir.resolve(poolingPath).resolve("config.json"), poolingJson);
        }
    }

    @Test
    void withoutSentenceTransformersFilesTheArchitectureDefaultIsNormalized() {
        PoolingConfig config = PoolingConfig.load(dir, PLAIN, PoolingType.LAST);
        assertEquals(PoolingType.LAST, config.type());
        assertTrue(config.normalize());
    }

    @Test
    void poolingModeAndNormalizeModuleComeFromModulesJson() throws IOException {
        modules("1_Pooling", true, "{\"pooling_mode_cls_token\": false, \"pooling_mode_mean_tokens\": true}");
        PoolingConfig config = PoolingConfig.load(dir, PLAIN, PoolingType.CLS);
        assertEquals(PoolingType.MEAN, config.type());
        assertTrue(config.normalize());
    }

    @Test
    void noNormalizeModuleMeansRawVectors() throws IOException {
        modules("1_Pooling", false, "{\"pooling_mode_lasttoken\": true}");
        PoolingConfig config = PoolingConfig.load(dir, PLAIN, PoolingType.CLS);
        assertEquals(PoolingType.LAST, config.type());
        assertFalse(config.normalize());
    }

    @Test
    void aModulePathOutsideTheDirectoryIsRefused() throws IOException {
        modules("../../etc", true, "");
        ConfigException e = assertThrows(ConfigException.class, () -> PoolingConfig.load(dir, PLAIN, PoolingType.CLS));
        assertTrue(e.getMessage().contains("'../../etc'"), e.getMessage());
    }

    @Test
    void unsupportedOrAmbiguousPoolingModesAreRefusedNamingTheFile() throws IOException {
        modules("1_Pooling", true, "{\"pooling_mode_max_tokens\": true}");
        ConfigException e = assertThrows(ConfigException.class, () -> PoolingConfig.load(dir, PLAIN, PoolingType.CLS));
        assertTrue(e.getMessage().contains("1_Pooling") && e.getMessage().contains("pooling_mode_max_tokens"), e.getMessage());
    }

    @Test
    void matryoshkaDimensionsComeFromConfigJson() {
        ModelConfig listed = ModelConfig.parse("{\"matryoshka_dimensions\": [256, 128]}");
        PoolingConfig config = PoolingConfig.load(dir, listed, PoolingType.CLS);
        assertEquals(List.of(256, 128), config.matryoshkaDimensions());
        assertTrue(config.dimensionsError(128, 768).isEmpty());
        assertTrue(config.dimensionsError(100, 768).orElseThrow().contains("matryoshka_dimensions [256, 128]"));
        assertTrue(PoolingConfig.load(dir, PLAIN, PoolingType.CLS).dimensionsError(128, 768).orElseThrow()
                .contains("does not support Matryoshka"));
    }
}
