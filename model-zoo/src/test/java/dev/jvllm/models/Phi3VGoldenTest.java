package dev.jvllm.models;

import dev.jvllm.ImageInput;
import dev.jvllm.InvalidRequestException;
import dev.jvllm.LLM;
import dev.jvllm.Prompt;
import dev.jvllm.SamplingParams;
import dev.jvllm.config.ConfigException;
import dev.jvllm.models.vision.Phi3VImageProcessor;
import dev.jvllm.spi.VisionLanguageModel;
import dev.jvllm.weights.Checkpoint;
import dev.jvllm.weights.WeightValues;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.IntStream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Phi-3-Vision on the CPU (and, in {@link Phi3VGoldenCudaTest}, the GPU) against a float32 reference
 * made of Transformers' CLIPVisionModel and Phi3ForCausalLM joined by the Hub code's HD transform
 * (tools/reference/make_vision_goldens.py, case phi3v: a tiny CLIP of 56 pixels, so a crop gives 2 × 2
 * merged rows, and num_crops 4): images scaled to 2 × 2, 3 × 1 (tall, padded at the sides), 2 × 2
 * (scaled up) and 1 × 4 crops.
 */
class Phi3VGoldenTest {

    private static final int IMAGE_TOKEN = 500;

    String device() {
        return "cpu";
    }

    ImageInput image(Path png) {
        return VisionGoldens.decoded(png);
    }

    private LlavaGoldenTest.Case golden() {
        return LlavaGoldenTest.Case.load("phi3v", this::image);
    }

    @Test
    void logitsMatchTheReferenceAtEveryPosition() {
        LlavaGoldenTest.Case golden = golden();
        VisionGoldens.assertLogits(golden, golden.directory(), device(), IMAGE_TOKEN, model -> {
            VisionLanguageModel vision = (VisionLanguageModel) model;
            assertEquals(IMAGE_TOKEN, vision.imageTokenId());
            assertEquals(List.of(27, 25, 27, 25, 27), golden.images().stream().map(vision::imageTokenCount).toList(),
                    "(crops + 1) · 4 + 1 + (rows + 1) · 2 placeholders an image");
        });
    }

    @Test
    void greedyTokensEqualTheReferenceWithPlaceholdersWrittenOnce() {
        LlavaGoldenTest.Case golden = golden();
        VisionGoldens.assertGenerates(golden, golden.directory(), device(),
                IntStream.range(0, golden.prompts().size()).mapToObj(golden::prompt).toList());
    }

    /** The global view (PyTorch's bicubic), then the crops of the white-padded, Pillow-scaled image, row by row. */
    @Test
    void cropsEqualTheReferencePreprocessing() throws IOException {
        LlavaGoldenTest.Case golden = golden();
        Phi3VImageProcessor processor = Phi3VImageProcessor.load(golden.directory(), 56);
        assertEquals(4, processor.numCrops());
        try (Checkpoint file = Checkpoint.openFile(golden.directory().resolve("logits.safetensors"))) {
            for (int j = 0; j < golden.images().size(); j++) {
                float[] expected = WeightValues.floats(file.get("crops" + j));
                List<float[]> crops = processor.crops(golden.images().get(j));
                int size = 3 * 56 * 56;
                assertEquals(expected.length, crops.size() * size, "image " + j + " crops");
                for (int c = 0; c < crops.size(); c++) {
                    for (int k = 0; k < size; k++) {
                        assertEquals(expected[c * size + k], crops.get(c)[k], 2e-5, "image " + j + " crop " + c + " value " + k);
                    }
                }
            }
        }
    }

    /**
     * What the memory reservation encodes is the largest image: a column of num_crops crops, whose
     * placeholders no other shape exceeds.
     */
    @Test
    void theLargestImageIsAColumnOfNumCropsCrops() {
        Phi3VImageProcessor processor = new Phi3VImageProcessor(56, 4, new double[]{0.5, 0.5, 0.5}, new double[]{0.5, 0.5, 0.5});
        var column = processor.layout(56, 224);
        assertEquals(List.of(4, 1), List.of(column.rows(), column.cols()));
        for (int w = 1; w <= 300; w += 7) {
            for (int h = 1; h <= 300; h += 11) {
                if (Math.max(w, h) / Math.min(w, h) > 224) continue;  // too thin: refused
                var l = processor.layout(w, h);
                assertTrue(l.crops() <= 4 && l.rows() <= 4, w + "x" + h + ": " + l);
            }
        }
    }

    /**
     * Untrusted configs and requests: an image too thin to scale, towers and transforms not built (or left to the
     * Hub code's defaults, which are not the HD transform), a bad num_crops.
     */
    @Test
    void badImagesAndConfigsAreRefusedByName(@TempDir Path dir) throws IOException {
        LlavaGoldenTest.Case golden = golden();
        for (String file : new String[]{"model.safetensors", "preprocessor_config.json"}) {
            Files.copy(golden.directory().resolve(file), dir.resolve(file));
        }
        var json = new com.fasterxml.jackson.databind.ObjectMapper();
        var saved = (com.fasterxml.jackson.databind.node.ObjectNode) json.readTree(golden.directory().resolve("config.json").toFile());
        json.writeValue(dir.resolve("config.json").toFile(), saved);
        try (LLM llm = LLM.builder().model(dir.toString()).device("cpu").maxModelLen(256).build()) {
            var thin = assertThrows(InvalidRequestException.class, () -> llm.generatePrompts(List.of(Prompt.tokens(
                    new int[]{1, IMAGE_TOKEN, 2}, List.of(ImageInput.rgb(5000, 1, new byte[3 * 5000])))),
                    SamplingParams.builder().maxTokens(1).build()));
            assertEquals("image", thin.field());
            assertTrue(thin.getMessage().contains("too thin"), thin.getMessage());
        }
        String[][] refusals = {{"embd_layer", "hd_transform_order", "\"glb_sub\""}, {"embd_layer", "projection_cls", "\"linear\""},
                {"img_processor", "type_feature", "\"cls_patch\""}, {"img_processor", "image_dim_out", "64"}};
        for (String[] bad : refusals) {
            var config = saved.deepCopy();
            ((com.fasterxml.jackson.databind.node.ObjectNode) config.get(bad[0])).set(bad[1], json.readTree(bad[2]));
            json.writeValue(dir.resolve("config.json").toFile(), config);
            var e = assertThrows(ConfigException.class, () -> LLM.builder().model(dir.toString()).device("cpu").maxModelLen(64).build(),
                    bad[1]);
            assertTrue(e.getMessage().contains(bad[1]), e.getMessage());
        }
        for (String field : new String[]{"use_hd_transform", "hd_transform_order", "projection_cls"}) {
            var config = saved.deepCopy();
            ((com.fasterxml.jackson.databind.node.ObjectNode) config.get("embd_layer")).remove(field);
            json.writeValue(dir.resolve("config.json").toFile(), config);
            var e = assertThrows(ConfigException.class, () -> LLM.builder().model(dir.toString()).device("cpu").maxModelLen(64).build(),
                    field);
            assertTrue(e.getMessage().contains(field), "missing, the Hub code's default is not what is served: " + e.getMessage());
        }
        var noTower = saved.deepCopy();
        ((com.fasterxml.jackson.databind.node.ObjectNode) noTower.get("img_processor")).remove("vision_config");
        ((com.fasterxml.jackson.databind.node.ObjectNode) noTower.get("img_processor")).put("model_name", "openai/clip-vit-base-patch32");
        json.writeValue(dir.resolve("config.json").toFile(), noTower);
        var tower = assertThrows(ConfigException.class, () -> LLM.builder().model(dir.toString()).device("cpu").maxModelLen(64).build());
        assertTrue(tower.getMessage().contains("model_name"), tower.getMessage());
        json.writeValue(dir.resolve("config.json").toFile(), saved);
        Files.writeString(dir.resolve("preprocessor_config.json"), "{\"num_crops\": 0}");
        var crops = assertThrows(ConfigException.class, () -> LLM.builder().model(dir.toString()).device("cpu").maxModelLen(64).build());
        assertTrue(crops.getMessage().contains("num_crops"), crops.getMessage());
        for (String normalization : new String[]{"\"image_std\": [0.5, 0, 0.5]", "\"image_mean\": \"grey\""}) {
            Files.writeString(dir.resolve("preprocessor_config.json"), "{\"num_crops\": 4, " + normalization + "}");
            var e = assertThrows(ConfigException.class, () -> LLM.builder().model(dir.toString()).device("cpu").maxModelLen(64).build());
            assertTrue(e.getMessage().startsWith(dir.resolve("preprocessor_config.json").toString()), e.getMessage());
        }
    }
}
