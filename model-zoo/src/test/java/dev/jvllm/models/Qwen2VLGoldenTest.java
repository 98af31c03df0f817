package dev.jvllm.models;

import dev.jvllm.ImageInput;
import dev.jvllm.models.vision.Qwen2VLImageProcessor;
import dev.jvllm.spi.VisionLanguageModel;
import dev.jvllm.weights.Checkpoint;
import dev.jvllm.weights.WeightValues;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.nio.file.Path;
import java.util.stream.IntStream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * Qwen2-VL and Qwen2.5-VL on the CPU (and, in {@link Qwen2VLGoldenCudaTest}, the GPU) against Transformers' float32
 * outputs (tools/reference/make_vision_goldens.py): images of 2 × 3, 5 × 1 and 3 × 4 (Qwen2.5-VL: 5 × 5, in
 * windows of 2 × 2) merged patches
 * between {@code <|vision_start|>} (501) and {@code <|vision_end|>} (502), the text after them
 * positioned by M-RoPE from where each image's grid ends.
 */
class Qwen2VLGoldenTest {

    private static final int IMAGE_TOKEN = 500, IMAGE_START = 501, IMAGE_END = 502;

    String device() {
        return "cpu";
    }

    ImageInput image(Path png) {
        return VisionGoldens.decoded(png);
    }

    private LlavaGoldenTest.Case load(String name) {
        return LlavaGoldenTest.Case.load(name, this::image);
    }

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"qwen2-vl", "qwen2.5-vl"})
    void logitsMatchTransformersAtEveryPosition(String name) {
        LlavaGoldenTest.Case golden = load(name);
        VisionGoldens.assertLogits(golden, golden.directory(), device(), IMAGE_TOKEN, model -> {
            assertEquals(IMAGE_START, ((VisionLanguageModel) model).imageStartTokenId());
            assertEquals(IMAGE_END, ((VisionLanguageModel) model).imageEndTokenId());
        });
    }

    /** Generation goes past the prompt: decode steps take their M-RoPE positions from the images before them. */
    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"qwen2-vl", "qwen2.5-vl"})
    void greedyTokensEqualTransformersWithPlaceholdersWrittenOnce(String name) {
        LlavaGoldenTest.Case golden = load(name);
        VisionGoldens.assertGenerates(golden, golden.directory(), device(),
                IntStream.range(0, golden.prompts().size()).mapToObj(golden::prompt).toList());
    }

    /** Prefill chunks of 5 tokens: image tokens and the text after them take their M-RoPE positions in any chunk. */
    @Test
    void imagesSplitAcrossPrefillChunksGiveTheSameTokens() {
        LlavaGoldenTest.Case golden = load("qwen2.5-vl");
        try (dev.jvllm.LLM llm = dev.jvllm.LLM.builder().model(golden.directory().toString()).device(device()).maxModelLen(256)
                .maxNumBatchedTokens(5).maxNumSeqs(2).build()) {
            var prompts = IntStream.range(0, golden.prompts().size()).mapToObj(golden::prompt).toList();
            var outputs = llm.generatePrompts(prompts, dev.jvllm.SamplingParams.builder().temperature(0).ignoreEos(true)
                    .maxTokens(16).build());
            for (int i = 0; i < prompts.size(); i++) {
                assertArrayEquals(golden.greedy().get(i), outputs.get(i).outputs().getFirst().tokenIdArray(), "prompt " + i);
            }
        }
    }

    /**
     * A pixel budget of 64 patches (max_pixels 12 544, smaller images): the images one step reaches
     * go through the tower together and give what each gives alone.
     */
    @Test
    void imagesOfOneStepEncodedTogetherGiveWhatEachGivesAlone(@org.junit.jupiter.api.io.TempDir Path dir) throws java.io.IOException {
        LlavaGoldenTest.Case golden = load("qwen2-vl");
        for (String file : new String[]{"model.safetensors", "config.json"}) {
            java.nio.file.Files.copy(golden.directory().resolve(file), dir.resolve(file));
        }
        java.nio.file.Files.writeString(dir.resolve("preprocessor_config.json"), "{\"min_pixels\": 3136, \"max_pixels\": 12544}");
        var prompts = IntStream.range(0, golden.prompts().size()).mapToObj(golden::prompt).toList();
        var greedy = dev.jvllm.SamplingParams.builder().temperature(0).ignoreEos(true).maxTokens(8).build();
        java.util.List<int[]> alone = new java.util.ArrayList<>();
        for (var prompt : prompts) {
            try (dev.jvllm.LLM llm = dev.jvllm.LLM.builder().model(dir.toString()).device(device()).maxModelLen(256).build()) {
                alone.add(llm.generatePrompts(java.util.List.of(prompt), greedy).getFirst().outputs().getFirst().tokenIdArray());
            }
        }
        try (dev.jvllm.LLM llm = dev.jvllm.LLM.builder().model(dir.toString()).device(device()).maxModelLen(256).build()) {
            var together = llm.generatePrompts(prompts, greedy);
            for (int i = 0; i < prompts.size(); i++) {
                assertArrayEquals(alone.get(i), together.get(i).outputs().getFirst().tokenIdArray(), "prompt " + i);
            }
        }
    }

    @Test
    void theEngineAddsTheVisionStartAndEndTokensWhereThePromptLacksThem() {
        LlavaGoldenTest.Case golden = load("qwen2-vl");
        VisionGoldens.assertGenerates(golden, golden.directory(), device(), VisionGoldens.bare(golden, IMAGE_START, IMAGE_END));
    }

    /**
     * The Hub's Qwen2-VL configs keep the language model's fields at the top level, with
     * {@code rope_scaling: {"type": "mrope", "mrope_section": [...]}}: the same model.
     */
    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"qwen2-vl", "qwen2.5-vl"})
    void theHubsConfigLayoutGivesTheSameModel(String name, @org.junit.jupiter.api.io.TempDir Path dir) throws java.io.IOException {
        LlavaGoldenTest.Case golden = load(name);
        for (String file : new String[]{"model.safetensors", "preprocessor_config.json"}) {
            java.nio.file.Files.copy(golden.directory().resolve(file), dir.resolve(file));
        }
        var json = new com.fasterxml.jackson.databind.ObjectMapper();
        var saved = (com.fasterxml.jackson.databind.node.ObjectNode) json.readTree(golden.directory().resolve("config.json").toFile());
        var hub = ((com.fasterxml.jackson.databind.node.ObjectNode) saved.get("text_config")).deepCopy();
        hub.remove("rope_parameters");
        hub.remove("model_type");
        hub.put("rope_theta", 10000.0);
        hub.putObject("rope_scaling").put("type", "mrope").putArray("mrope_section").add(4).add(2).add(2);
        for (String field : new String[]{"architectures", "vision_config", "image_token_id", "vision_start_token_id",
                "vision_end_token_id", "video_token_id"}) {
            hub.set(field, saved.get(field));
        }
        hub.set("model_type", saved.get("model_type"));
        json.writeValue(dir.resolve("config.json").toFile(), hub);
        VisionGoldens.assertLogits(golden, dir, device(), IMAGE_TOKEN, model -> { });
    }

    /** Untrusted configs and requests: a pixel budget past what an image may hold, an extreme aspect ratio, broken sections. */
    @Test
    void badPixelBudgetsAspectRatiosAndSectionsAreRefusedByName(@org.junit.jupiter.api.io.TempDir Path dir) throws java.io.IOException {
        var json = new com.fasterxml.jackson.databind.ObjectMapper();
        var huge = json.createObjectNode().put("min_pixels", 3136).put("max_pixels", 1L << 40);
        var e = org.junit.jupiter.api.Assertions.assertThrows(dev.jvllm.config.ConfigException.class,
                () -> Qwen2VLImageProcessor.of(huge, 14, 2, "preprocessor_config.json"));
        org.junit.jupiter.api.Assertions.assertTrue(e.getMessage().contains("max_pixels"), e.getMessage());
        var thin = org.junit.jupiter.api.Assertions.assertThrows(dev.jvllm.InvalidRequestException.class,
                () -> Qwen2VLImageProcessor.of(null, 14, 2, "test").grid(ImageInput.rgb(1000, 2, new byte[6000])));
        assertEquals("image", thin.field());
        for (String[] field : new String[][]{{"resample", "1"}, {"image_mean", "[0.5, 0.5]"}, {"max_pixels", "\"big\""}}) {
            var config = (com.fasterxml.jackson.databind.node.ObjectNode) json.readTree("{\"" + field[0] + "\": " + field[1] + "}");
            var bad = org.junit.jupiter.api.Assertions.assertThrows(dev.jvllm.config.ConfigException.class,
                    () -> Qwen2VLImageProcessor.of(config, 14, 2, "preprocessor_config.json"), field[0]);
            org.junit.jupiter.api.Assertions.assertTrue(bad.getMessage().startsWith("preprocessor_config.json"), bad.getMessage());
        }
        LlavaGoldenTest.Case golden = load("qwen2-vl");
        for (String file : new String[]{"model.safetensors", "preprocessor_config.json"}) {
            java.nio.file.Files.copy(golden.directory().resolve(file), dir.resolve(file));
        }
        var config = (com.fasterxml.jackson.databind.node.ObjectNode) json.readTree(golden.directory().resolve("config.json").toFile());
        ((com.fasterxml.jackson.databind.node.ObjectNode) config.path("text_config").path("rope_parameters"))
                .putArray("mrope_section").add(4).add(2).add(3);
        json.writeValue(dir.resolve("config.json").toFile(), config);
        var sections = org.junit.jupiter.api.Assertions.assertThrows(dev.jvllm.config.ConfigException.class,
                () -> dev.jvllm.LLM.builder().model(dir.toString()).device("cpu").maxModelLen(64).build());
        org.junit.jupiter.api.Assertions.assertTrue(sections.getMessage().contains("mrope_section"), sections.getMessage());
        ((com.fasterxml.jackson.databind.node.ObjectNode) config.path("text_config").path("rope_parameters"))
                .putArray("mrope_section").add(-2).add(5).add(5);
        json.writeValue(dir.resolve("config.json").toFile(), config);
        var negative = org.junit.jupiter.api.Assertions.assertThrows(dev.jvllm.config.ConfigException.class,
                () -> dev.jvllm.LLM.builder().model(dir.toString()).device("cpu").maxModelLen(64).build());
        org.junit.jupiter.api.Assertions.assertTrue(negative.getMessage().contains("mrope_section"), negative.getMessage());
        // A small pixel budget and an extreme aspect ratio: smart_resize rounds past the budget, refused on arrival.
        java.nio.file.Files.writeString(dir.resolve("preprocessor_config.json"), "{\"min_pixels\": 3136, \"max_pixels\": 100352}");
        java.nio.file.Files.copy(golden.directory().resolve("config.json"), dir.resolve("config.json"),
                java.nio.file.StandardCopyOption.REPLACE_EXISTING);
        try (dev.jvllm.LLM llm = dev.jvllm.LLM.builder().model(dir.toString()).device("cpu").maxModelLen(256).build()) {
            var thinImage = org.junit.jupiter.api.Assertions.assertThrows(dev.jvllm.InvalidRequestException.class,
                    () -> llm.generatePrompts(java.util.List.of(dev.jvllm.Prompt.tokens(new int[]{1, 500, 2},
                            java.util.List.of(ImageInput.rgb(5600, 28, new byte[3 * 5600 * 28])))),
                            dev.jvllm.SamplingParams.builder().maxTokens(1).build()));
            assertEquals("image", thinImage.field());
        }
    }

    /** smart_resize and the merge-window order of the patches equal Qwen2-VL's preprocessing with Pillow. */
    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"qwen2-vl", "qwen2.5-vl"})
    void patchesEqualPillowsPixels(String name) throws java.io.IOException {
        LlavaGoldenTest.Case golden = load(name);
        Qwen2VLImageProcessor processor = Qwen2VLImageProcessor.of(null, 14, 2, "test");
        var grids = new com.fasterxml.jackson.databind.ObjectMapper().readTree(golden.directory().resolve("goldens.json").toFile())
                .get("grids");
        try (Checkpoint file = Checkpoint.openFile(golden.directory().resolve("logits.safetensors"))) {
            for (int j = 0; j < golden.images().size(); j++) {
                ImageInput image = golden.images().get(j);
                assertArrayEquals(new int[]{grids.get(j).get(1).asInt(), grids.get(j).get(2).asInt()}, processor.grid(image),
                        "image " + j + " grid");
                float[] expected = WeightValues.floats(file.get("patches" + j)); // [patches, 3 × 2 frames × 14 × 14]
                float[] patches = processor.patches(image);
                int frame = 14 * 14, ours = 3 * frame;
                assertEquals(expected.length, 2 * patches.length);
                for (int row = 0; row < patches.length / ours; row++) {
                    for (int c = 0; c < 3; c++) {
                        for (int k = 0; k < frame; k++) {
                            float value = patches[row * ours + c * frame + k];
                            for (int t = 0; t < 2; t++) {
                                assertEquals(expected[row * 2 * ours + (c * 2 + t) * frame + k], value, 1e-5,
                                        "image " + j + " patch " + row + " channel " + c + " frame " + t + " value " + k);
                            }
                        }
                    }
                }
            }
        }
    }

    /**
     * The image the memory reservation encodes becomes the most patches any image can: with max_pixels
     * 28·28·3000, 12 000 (a 3 360 × 2 800 image, not the largest square's 11 664), and no size of a sweep more.
     */
    @Test
    void theLargestImageBecomesTheMostPatches() {
        var config = new com.fasterxml.jackson.databind.ObjectMapper().createObjectNode().put("min_pixels", 3136)
                .put("max_pixels", 28 * 28 * 3000);
        Qwen2VLImageProcessor processor = Qwen2VLImageProcessor.of(config, 14, 2, "test");
        int[] largest = processor.largestSize();
        int most = patchesOf(processor, largest[1], largest[0]);
        assertEquals(12_000, most);
        assertEquals(12_000, patchesOf(processor, 1680, 1400));
        for (int w = 28; w <= 6000; w += 97) {
            for (int h = 28; h <= 6000; h += 89) {
                if (Math.max(w, h) / Math.min(w, h) > 200) continue;
                org.junit.jupiter.api.Assertions.assertTrue(patchesOf(processor, w, h) <= most, w + "x" + h);
            }
        }
    }

    private static int patchesOf(Qwen2VLImageProcessor processor, int width, int height) {
        int[] size = processor.resized(width, height);
        return size[0] / 14 * (size[1] / 14);
    }
}
