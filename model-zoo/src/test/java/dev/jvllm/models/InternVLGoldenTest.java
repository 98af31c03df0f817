package dev.jvllm.models;

import dev.jvllm.ImageInput;
import dev.jvllm.Prompt;
import dev.jvllm.models.vision.ClipImageProcessor;
import dev.jvllm.models.vision.DynamicTiling;
import dev.jvllm.spi.VisionLanguageModel;
import dev.jvllm.weights.Checkpoint;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.IntStream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * InternVL on the CPU (and, in {@link InternVLGoldenCudaTest}, the GPU) against Transformers' float32
 * outputs (tools/reference/make_vision_goldens.py): an InternViT tower (LayerNorm with q/k norms and
 * the final norm; RMSNorm without), the pixel shuffle and projector, and a Qwen2 or Llama, with
 * images of 7, 4 and 1 tiles between {@code <img>} (501) and {@code </img>} (502).
 */
class InternVLGoldenTest {

    private static final int IMAGE_TOKEN = 500, IMAGE_START = 501, IMAGE_END = 502;

    String device() {
        return "cpu";
    }

    /** The golden image, decoded from its PNG, which must give the pixels of the raw copy beside it. */
    ImageInput image(Path png) {
        return VisionGoldens.decoded(png);
    }

    LlavaGoldenTest.Case load(String name) {
        return LlavaGoldenTest.Case.load(name, this::image);
    }

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"internvl-qwen2", "internvl-rms-llama", "internvl-phi3"})
    void logitsMatchTransformersAtEveryPosition(String name) {
        assertLogits(load(name), load(name).directory());
    }

    /** The golden's logits at every position of each prompt, from the checkpoint in {@code directory}. */
    void assertLogits(LlavaGoldenTest.Case golden, Path directory) {
        VisionGoldens.assertLogits(golden, directory, device(), IMAGE_TOKEN, model -> {
            assertEquals(IMAGE_START, ((VisionLanguageModel) model).imageStartTokenId(), "<img> from tokenizer_config.json");
            assertEquals(IMAGE_END, ((VisionLanguageModel) model).imageEndTokenId());
        });
    }

    /** Each image written as {@code <img><IMG_CONTEXT></img>}, as InternVL's chat template writes it. */
    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"internvl-qwen2", "internvl-rms-llama", "internvl-phi3"})
    void greedyTokensEqualTransformersWithPlaceholdersWrittenOnce(String name) {
        LlavaGoldenTest.Case golden = load(name);
        assertGenerates(golden, IntStream.range(0, golden.prompts().size()).mapToObj(golden::prompt).toList());
    }

    /** A bare placeholder gets its {@code <img>} and {@code </img>} from the engine. */
    @Test
    void theEngineAddsTheImageStartAndEndTokensWhereThePromptLacksThem() {
        LlavaGoldenTest.Case golden = load("internvl-qwen2");
        List<Prompt> bare = VisionGoldens.bare(golden, IMAGE_START, IMAGE_END);
        assertGenerates(golden, bare);
    }

    private void assertGenerates(LlavaGoldenTest.Case golden, List<Prompt> prompts) {
        assertGenerates(golden, golden.directory(), prompts);
    }

    private void assertGenerates(LlavaGoldenTest.Case golden, Path directory, List<Prompt> prompts) {
        VisionGoldens.assertGenerates(golden, directory, device(), prompts);
    }

    /**
     * InternVL's own checkpoint format ({@code InternVLChatModel}, as OpenGVLab publishes InternVL2):
     * the RMSNorm golden (no final norm, as InternVL's own tower has none) repacked under its names,
     * q/k/v fused into {@code qkv}, the projector as {@code mlp1}, the config as InternVLChatConfig
     * writes it; the placeholder comes from the tokenizer files. Transformers' conversion maps these
     * names onto its own, so the logits and tokens are the golden's.
     */
    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"internvl-rms-llama", "internvl-phi3"})
    void internVlsOwnCheckpointFormatGivesTheSameModel(String caseName, @org.junit.jupiter.api.io.TempDir Path dir) throws IOException {
        LlavaGoldenTest.Case golden = load(caseName);
        Path own = dir.resolve("internvl-chat");
        java.nio.file.Files.createDirectories(own);
        var writer = new dev.jvllm.weights.SafetensorsTestWriter();
        try (Checkpoint source = Checkpoint.open(golden.directory())) {
            java.util.Map<String, float[]> fused = new java.util.TreeMap<>();
            for (String name : source.names()) {
                var tensor = source.get(name);
                float[] values = dev.jvllm.weights.WeightValues.floats(tensor);
                String renamed = name.replace("vision_tower.embeddings.cls_token", "vision_model.embeddings.class_embedding")
                        .replace("vision_tower.embeddings.patch_embeddings.projection", "vision_model.embeddings.patch_embedding")
                        .replace("vision_tower.embeddings.position_embeddings", "vision_model.embeddings.position_embedding")
                        .replace("vision_tower.encoder.layer.", "vision_model.encoder.layers.")
                        .replace(".attention.projection_layer.", ".attn.proj.").replace(".layernorm_before.", ".norm1.")
                        .replace(".layernorm_after.", ".norm2.").replace(".lambda_1", ".ls1").replace(".lambda_2", ".ls2")
                        .replace("multi_modal_projector.layer_norm.", "mlp1.0.").replace("multi_modal_projector.linear_1.", "mlp1.1.")
                        .replace("multi_modal_projector.linear_2.", "mlp1.3.");
                if (renamed.matches(".*\\.attention\\.[qkv]_proj\\.weight")) {
                    fused.put(renamed, values);
                    continue;
                }
                writer.add(renamed, dev.jvllm.weights.DType.F32, tensor.shape(), encode(values));
            }
            for (String q : fused.keySet().stream().filter(n -> n.contains(".q_proj.")).toList()) {
                float[] wq = fused.get(q), wk = fused.get(q.replace(".q_proj.", ".k_proj.")), wv = fused.get(q.replace(".q_proj.", ".v_proj."));
                float[] qkv = new float[wq.length + wk.length + wv.length];
                System.arraycopy(wq, 0, qkv, 0, wq.length);
                System.arraycopy(wk, 0, qkv, wq.length, wk.length);
                System.arraycopy(wv, 0, qkv, wq.length + wk.length, wv.length);
                int cols = (int) Math.round(Math.sqrt(wq.length));
                writer.add(q.replace(".attention.q_proj.", ".attn.qkv."), dev.jvllm.weights.DType.F32,
                        new long[]{3L * cols, cols}, encode(qkv));
            }
        }
        writer.write(own.resolve("model.safetensors"));
        java.nio.file.Files.copy(golden.directory().resolve("tokenizer_config.json"), own.resolve("tokenizer_config.json"));
        var json = new com.fasterxml.jackson.databind.ObjectMapper();
        var hf = json.readTree(golden.directory().resolve("config.json").toFile());
        var config = json.createObjectNode();
        config.putArray("architectures").add("InternVLChatModel");
        config.put("model_type", "internvl_chat");
        config.putObject("auto_map").put("AutoModel", "modeling_internvl_chat.InternVLChatModel");
        var vision = config.putObject("vision_config");
        vision.put("model_type", "intern_vit_6b");
        for (String field : List.of("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "norm_type",
                "layer_norm_eps", "hidden_act")) {
            vision.set(field, hf.path("vision_config").path(field));
        }
        vision.put("image_size", 56).put("patch_size", 14).put("qkv_bias", false).put("qk_normalization", false);
        config.set("llm_config", hf.path("text_config"));
        config.put("select_layer", -1).put("downsample_ratio", 0.5).put("ps_version", "v2").put("force_image_size", 56)
                .put("dynamic_image_size", true).put("use_thumbnail", true).put("min_dynamic_patch", 1).put("max_dynamic_patch", 6)
                .put("template", "internvl2_5");
        json.writeValue(own.resolve("config.json").toFile(), config);
        assertLogits(golden, own);
        assertGenerates(golden, own, IntStream.range(0, golden.prompts().size()).mapToObj(golden::prompt).toList());
        // The placeholder comes from the tokenizer files only: without them the load is refused, naming it.
        java.nio.file.Files.delete(own.resolve("tokenizer_config.json"));
        var e = org.junit.jupiter.api.Assertions.assertThrows(dev.jvllm.config.ConfigException.class,
                () -> dev.jvllm.LLM.builder().model(own.toString()).device(device()).maxModelLen(64).build());
        org.junit.jupiter.api.Assertions.assertTrue(e.getMessage().contains("<IMG_CONTEXT>"), e.getMessage());
    }

    /** Untrusted configs: a pixel shuffle other than 0.5, a tile count past 64. */
    @Test
    void unsupportedShufflesTileCountsAndMissingPlaceholdersAreRefusedByName(@org.junit.jupiter.api.io.TempDir Path dir)
            throws IOException {
        LlavaGoldenTest.Case golden = load("internvl-qwen2");
        var json = new com.fasterxml.jackson.databind.ObjectMapper();
        for (String[] edit : new String[][]{{"config.json", "downsample_ratio", "0.25"}, {"preprocessor_config.json", "max_patches", "100"}}) {
            Path copy = java.nio.file.Files.createDirectories(dir.resolve(edit[1]));
            for (String file : List.of("model.safetensors", "config.json", "preprocessor_config.json", "tokenizer_config.json")) {
                java.nio.file.Files.copy(golden.directory().resolve(file), copy.resolve(file));
            }
            var node = (com.fasterxml.jackson.databind.node.ObjectNode) json.readTree(copy.resolve(edit[0]).toFile());
            node.put(edit[1], Double.parseDouble(edit[2]));
            json.writeValue(copy.resolve(edit[0]).toFile(), node);
            var e = org.junit.jupiter.api.Assertions.assertThrows(dev.jvllm.config.ConfigException.class,
                    () -> dev.jvllm.LLM.builder().model(copy.toString()).device("cpu").maxModelLen(64).build());
            org.junit.jupiter.api.Assertions.assertTrue(e.getMessage().contains(edit[1]), e.getMessage());
        }
    }

    private static byte[] encode(float[] values) {
        double[] wide = new double[values.length];
        for (int i = 0; i < values.length; i++) wide[i] = values[i];
        return dev.jvllm.weights.SafetensorsTestWriter.encode(dev.jvllm.weights.DType.F32, wide);
    }

    /** The tiles equal InternVL's own preprocessing with Pillow: bicubic onto the grid, cut, a thumbnail; ImageNet's mean and std. */
    @Test
    void tilesEqualPillowsPixels() {
        LlavaGoldenTest.Case golden = load("internvl-qwen2");
        DynamicTiling tiling = new DynamicTiling(56, 1, 6, true);
        ClipImageProcessor processor = ClipImageProcessor.builder().size(56, 56).doCenterCrop(false)
                .resample(ClipImageProcessor.BICUBIC).imageMean(0.485, 0.456, 0.406).imageStd(0.229, 0.224, 0.225).build();
        try (Checkpoint file = Checkpoint.openFile(golden.directory().resolve("logits.safetensors"))) {
            for (int j = 0; j < golden.images().size(); j++) {
                List<ImageInput> tiles = tiling.tiles(golden.images().get(j), processor);
                float[] expected = dev.jvllm.weights.WeightValues.floats(file.get("tiles" + j)); // [tiles, 3, 56, 56]
                int tileValues = 3 * 56 * 56;
                assertEquals(expected.length / tileValues, tiles.size(), "image " + j + " tiles");
                for (int t = 0; t < tiles.size(); t++) {
                    float[] pixels = processor.pixels(tiles.get(t));
                    for (int k = 0; k < pixels.length; k++) {
                        assertEquals(expected[t * tileValues + k], pixels[k], 1e-5, "image " + j + " tile " + t + " value " + k);
                    }
                }
            }
        }
    }

    /** An image whose resize onto its grid needs too many filter taps is refused on arrival, naming the image. */
    @Test
    void anImageTooThinToResizeIsRefusedOnArrival() {
        DynamicTiling tiling = new DynamicTiling(448, 1, 12, true);
        ClipImageProcessor processor = ClipImageProcessor.builder().size(448, 448).doCenterCrop(false)
                .resample(ClipImageProcessor.BICUBIC).build();
        var e = org.junit.jupiter.api.Assertions.assertThrows(dev.jvllm.InvalidRequestException.class,
                () -> tiling.check(ImageInput.rgb(20_000_000, 1, new byte[60_000_000]), processor));
        assertEquals("image", e.field());
    }

    /** The grid of the closest aspect ratio; on a tie, the larger grid while the image covers more than half of it. */
    @Test
    void theGridFollowsTheImagesAspectRatio() {
        DynamicTiling tiling = new DynamicTiling(448, 1, 12, true);
        assertArrayEquals(new int[]{1, 1}, tiling.grid(448, 448));
        assertArrayEquals(new int[]{2, 2}, tiling.grid(700, 700), "a tie with 1 × 1 and 3 × 3; the image covers over half of 2 × 2 only");
        assertArrayEquals(new int[]{3, 3}, tiling.grid(1000, 1000), "and over half of 3 × 3");
        assertArrayEquals(new int[]{3, 3}, tiling.grid(1500, 1500));
        assertArrayEquals(new int[]{4, 1}, tiling.grid(1600, 400));
        assertArrayEquals(new int[]{4, 3}, tiling.grid(800, 600));
        assertEquals(13, tiling.maxTileCount());
        assertEquals(1, tiling.tileCount(448, 448), "no thumbnail beside a single tile");
        assertEquals(5, tiling.tileCount(700, 700));
    }
}
