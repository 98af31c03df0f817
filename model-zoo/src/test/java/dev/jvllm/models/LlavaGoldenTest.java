package dev.jvllm.models;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.jvllm.ImageInput;
import dev.jvllm.InvalidRequestException;
import dev.jvllm.LLM;
import dev.jvllm.Prompt;
import dev.jvllm.RequestOutput;
import dev.jvllm.SamplingParams;
import dev.jvllm.weights.Checkpoint;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.URISyntaxException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.IntStream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * LLaVA on the CPU (and, in {@link LlavaGoldenCudaTest}, the GPU) against Transformers' float32 outputs (tools/reference/make_vision_goldens.py):
 * a CLIP tower, the projector and a Llama, with prompts holding one image, two images (one of them
 * resized and cropped by the preprocessing) and none.
 */
class LlavaGoldenTest {

    private static final int IMAGE_TOKEN = 500;

    /** The backend the tests run on ({@link LlavaGoldenCudaTest}: "cuda"). */
    String device() {
        return "cpu";
    }

    Case load(String name) {
        return Case.load(name, this::image);
    }

    /** The golden image, decoded from its PNG, which must give the pixels of the raw copy beside it. */
    ImageInput image(Path png) {
        return VisionGoldens.decoded(png);
    }

    /** The raw RGB copy of a golden image ({@code imageN-WxH.rgb} beside {@code imageN.png}). */
    static ImageInput raw(Path png) {
        String stem = png.getFileName().toString().replace(".png", "-");
        try (var files = java.nio.file.Files.list(png.getParent())) {
            Path rgb = files.filter(f -> f.getFileName().toString().startsWith(stem) && f.toString().endsWith(".rgb"))
                    .findFirst().orElseThrow();
            String[] size = rgb.getFileName().toString().substring(stem.length()).replace(".rgb", "").split("x");
            return ImageInput.rgb(Integer.parseInt(size[0]), Integer.parseInt(size[1]), java.nio.file.Files.readAllBytes(rgb));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private LLM.Builder builder(Case golden) {
        return LLM.builder().model(golden.directory().toString()).device(device()).maxModelLen(256);
    }

    /** A case: its directory, images and prompts (ids with placeholders expanded, which images, greedy tokens, logits). */
    record Case(Path directory, List<ImageInput> images, List<int[]> prompts, List<int[]> imageIndices,
                List<int[]> greedy, List<float[][]> logits) {

        static Case load(String name, java.util.function.Function<Path, ImageInput> imageReader) {
            try {
                Path dir = Path.of(LlavaGoldenTest.class.getResource("/vision-goldens/" + name).toURI());
                JsonNode json = new ObjectMapper().readTree(dir.resolve("goldens.json").toFile());
                List<ImageInput> images = new ArrayList<>();
                for (JsonNode file : json.get("image_files")) images.add(imageReader.apply(dir.resolve(file.asText())));
                List<int[]> prompts = new ArrayList<>(), which = new ArrayList<>(), greedy = new ArrayList<>();
                List<float[][]> logits = new ArrayList<>();
                try (Checkpoint file = Checkpoint.openFile(dir.resolve("logits.safetensors"))) {
                    int i = 0;
                    for (JsonNode p : json.get("prompts")) {
                        prompts.add(Golden.ints(p.get("prompt_token_ids")));
                        which.add(Golden.ints(p.get("images")));
                        greedy.add(Golden.ints(p.get("greedy_token_ids")));
                        logits.add(Golden.matrix(file.get("prompt" + i++)));
                    }
                }
                return new Case(dir, images, prompts, which, greedy, logits);
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            } catch (URISyntaxException e) {
                throw new IllegalStateException(e);
            }
        }

        List<ImageInput> imagesOf(int prompt) {
            return IntStream.of(imageIndices.get(prompt)).mapToObj(images::get).toList();
        }

        /** Prompt i with each image's placeholders written once, as a user writes {@code <image>}. */
        int[] collapsed(int prompt) {
            int[] ids = prompts.get(prompt);
            return IntStream.range(0, ids.length)
                    .filter(k -> ids[k] != IMAGE_TOKEN || k == 0 || ids[k - 1] != IMAGE_TOKEN)
                    .map(k -> ids[k]).toArray();
        }

        Prompt prompt(int i) {
            return Prompt.tokens(collapsed(i), imagesOf(i));
        }
    }

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"llava-default", "llava-full-last", "llava-next", "llava-next-mistral"})
    void logitsMatchTransformersAtEveryPosition(String name) {
        Case golden = load(name);
        VisionGoldens.assertLogits(golden, golden.directory(), device(), IMAGE_TOKEN, model -> { });
    }

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"llava-default", "llava-full-last", "llava-next", "llava-next-mistral"})
    void greedyTokensEqualTransformersWithPlaceholdersWrittenOnce(String name) {
        Case golden = load(name);
        try (LLM llm = builder(golden).build()) {
            List<Prompt> prompts = IntStream.range(0, golden.prompts().size()).mapToObj(golden::prompt).toList();
            List<RequestOutput> outputs = llm.generatePrompts(prompts, greedy());
            for (int i = 0; i < prompts.size(); i++) {
                assertArrayEquals(golden.greedy().get(i), outputs.get(i).outputs().getFirst().tokenIdArray(), name + " prompt " + i);
                assertArrayEquals(golden.prompts().get(i), outputs.get(i).promptTokenIds().stream().mapToInt(Integer::intValue).toArray(),
                        "the output's prompt holds the expanded placeholders");
            }
        }
    }

    @Test
    void placeholdersAlreadyExpandedAreTakenAsTheyAre() {
        Case golden = load("llava-default");
        try (LLM llm = builder(golden).build()) {
            RequestOutput out = llm.generatePrompts(List.of(Prompt.tokens(golden.prompts().get(1), golden.imagesOf(1))),
                    greedy()).getFirst();
            assertArrayEquals(golden.greedy().get(1), out.outputs().getFirst().tokenIdArray());
        }
    }

    @Test
    void anImageSplitAcrossPrefillChunksGivesTheSameTokens() {
        Case golden = load("llava-default");
        try (LLM llm = builder(golden).maxNumBatchedTokens(7)
                .maxNumSeqs(2).build()) {
            List<RequestOutput> outputs = llm.generatePrompts(List.of(golden.prompt(0), golden.prompt(1)), greedy());
            assertArrayEquals(golden.greedy().get(0), outputs.get(0).outputs().getFirst().tokenIdArray());
            assertArrayEquals(golden.greedy().get(1), outputs.get(1).outputs().getFirst().tokenIdArray());
        }
    }

    /** A KV pool of six blocks for three image prompts: requests are preempted and recomputed, images and all. */
    @Test
    void imagePromptsPreemptedForWantOfBlocksGiveTheSameTokens() {
        Case golden = load("llava-default");
        // llava-default's language model: 2 layers of 2 KV heads of 16 features, float32 keys and values.
        long bytesPerBlock = 2L * 2 * 2 * 16 * Float.BYTES * 16;
        try (LLM llm = LLM.builder().model(golden.directory().toString()).device(device()).maxModelLen(96)
                .kvCacheMemoryBytes(6 * bytesPerBlock).build()) {
            List<Prompt> prompts = IntStream.range(0, golden.prompts().size()).mapToObj(golden::prompt).toList();
            List<RequestOutput> outputs = llm.generatePrompts(prompts, greedy());
            for (int i = 0; i < prompts.size(); i++) {
                assertArrayEquals(golden.greedy().get(i), outputs.get(i).outputs().getFirst().tokenIdArray(), "prompt " + i);
            }
            assertTrue(llm.metrics().preemptions() > 0, "no request was preempted: " + llm.metrics());
            assertEquals(llm.metrics().kvBlocksTotal(), llm.metrics().kvBlocksFree(), "every block is back in the pool");
        }
    }

    /** The same prompt ids with another image must not reuse the first image's cached blocks. */
    @Test
    void theImageIsPartOfThePrefixCacheKey() {
        Case golden = load("llava-default");
        int[] ids = golden.collapsed(0);
        try (LLM llm = builder(golden).enablePrefixCaching(true).build()) {
            RequestOutput other = llm.generatePrompts(List.of(Prompt.tokens(ids, List.of(golden.images().get(1)))), greedy())
                    .getFirst();
            RequestOutput own = llm.generatePrompts(List.of(Prompt.tokens(ids, List.of(golden.images().get(0)))), greedy())
                    .getFirst();
            assertArrayEquals(golden.greedy().get(0), own.outputs().getFirst().tokenIdArray());
            assertNotEquals(List.of(other.outputs().getFirst().tokenIds()), List.of(own.outputs().getFirst().tokenIds()),
                    "two images give different answers on this model");
            RequestOutput again = llm.generatePrompts(List.of(Prompt.tokens(ids, List.of(golden.images().get(0)))), greedy())
                    .getFirst();
            assertArrayEquals(golden.greedy().get(0), again.outputs().getFirst().tokenIdArray());
            assertTrue(llm.metrics().prefixCacheHits() > 0, "the repeated image's blocks are served from the cache");
        }
    }

    @Test
    void placeholdersThatDoNotMatchTheImagesAreRefusedNamingTheCounts() {
        Case golden = load("llava-default");
        try (LLM llm = builder(golden).build()) {
            int[] ids = golden.collapsed(1); // two placeholders
            InvalidRequestException e = assertThrows(InvalidRequestException.class,
                    () -> llm.generatePrompts(List.of(Prompt.tokens(ids, List.of(golden.images().get(0)))), greedy()));
            assertEquals("images", e.field());
            assertTrue(e.getMessage().contains("2 image placeholders") && e.getMessage().contains("for 1 image"), e.getMessage());
            // The engine goes on serving.
            assertArrayEquals(golden.greedy().get(2), llm.generatePrompts(List.of(golden.prompt(2)), greedy())
                    .getFirst().outputs().getFirst().tokenIdArray());
        }
    }

    @Test
    void moreImagesThanLimitImagesPerPromptAreRefusedAndZeroTakesNone() {
        Case golden = load("llava-default");
        try (LLM llm = builder(golden).limitImagesPerPrompt(1).build()) {
            InvalidRequestException e = assertThrows(InvalidRequestException.class,
                    () -> llm.generatePrompts(List.of(golden.prompt(1)), greedy()));
            assertEquals("images", e.field());
            assertTrue(e.getMessage().contains("2 images in one prompt; at most 1 (limitImagesPerPrompt)"), e.getMessage());
            assertArrayEquals(golden.greedy().get(0), llm.generatePrompts(List.of(golden.prompt(0)), greedy())
                    .getFirst().outputs().getFirst().tokenIdArray());
        }
        try (LLM llm = builder(golden).limitImagesPerPrompt(0).build()) {
            assertThrows(InvalidRequestException.class, () -> llm.generatePrompts(List.of(golden.prompt(0)), greedy()));
            assertArrayEquals(golden.greedy().get(2), llm.generatePrompts(List.of(golden.prompt(2)), greedy())
                    .getFirst().outputs().getFirst().tokenIdArray(), "a prompt without images still runs");
        }
    }

    /** LLaVA-interleave's SigLIP tower is not built: its config is refused naming the field, before any weight is read. */
    @Test
    void aVisionTowerOtherThanClipIsRefusedNamingItsModelType(@org.junit.jupiter.api.io.TempDir Path dir) throws IOException {
        Path golden = load("llava-default").directory();
        for (String file : List.of("model.safetensors", "preprocessor_config.json")) {
            java.nio.file.Files.copy(golden.resolve(file), dir.resolve(file));
        }
        java.nio.file.Files.writeString(dir.resolve("config.json"), java.nio.file.Files.readString(golden.resolve("config.json"))
                .replace("\"clip_vision_model\"", "\"siglip_vision_model\""));
        var e = assertThrows(dev.jvllm.config.ConfigException.class,
                () -> LLM.builder().model(dir.toString()).device(device()).maxModelLen(64).build());
        assertTrue(e.getMessage().contains("model_type 'siglip_vision_model' is not supported as the vision tower"), e.getMessage());
    }

    @Test
    void aTextModelRefusesImages() {
        Path llama = Golden.root().resolve("llama-plain");
        try (LLM llm = LLM.builder().model(llama.toString()).device(device()).maxModelLen(64).build()) {
            Case golden = load("llava-default");
            InvalidRequestException e = assertThrows(InvalidRequestException.class,
                    () -> llm.generatePrompts(List.of(Prompt.tokens(new int[]{1, 2, 3}, List.of(golden.images().get(0)))), greedy()));
            assertEquals("images", e.field());
            assertTrue(e.getMessage().contains("takes no images"), e.getMessage());
        }
    }

    private static SamplingParams greedy() {
        return SamplingParams.builder().temperature(0).ignoreEos(true).maxTokens(16).build();
    }
}
