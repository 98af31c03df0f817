package dev.jvllm.models.vision;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.jvllm.ImageInput;
import dev.jvllm.config.ConfigException;
import dev.jvllm.weights.Checkpoint;
import dev.jvllm.weights.WeightValues;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.net.URISyntaxException;
import java.nio.file.Files;
import java.nio.file.Path;

import static dev.jvllm.MessageAssertions.assertThrowsNaming;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

class ClipImageProcessorTest {

    private static final double[] CLIP_MEAN = {0.48145466, 0.4578275, 0.40821073};
    private static final double[] CLIP_STD = {0.26862954, 0.26130258, 0.27577711};

    /** Pillow's bicubic resize, center crop, 1/255 and normalization, for down-, up- and no scaling. */
    @Test
    void pixelsMatchPillowAndTransformers() throws IOException {
        Path dir = resource("preprocessing");
        JsonNode reference = new ObjectMapper().readTree(dir.resolve("preprocessing.json").toFile());
        int edge = reference.get("shortest_edge").asInt(), crop = reference.get("crop").asInt();
        ClipImageProcessor processor = ClipImageProcessor.builder().shortestEdge(edge).cropSize(crop, crop)
                .imageMean(doubles(reference.get("mean"))).imageStd(doubles(reference.get("std"))).build();
        assertEquals(56, processor.outputHeight());
        assertEquals(56, processor.outputWidth());

        try (Checkpoint expected = Checkpoint.openFile(dir.resolve("pixels.safetensors"))) {
            for (int i = 0; i < reference.get("sizes").size(); i++) {
                ImageInput image = ImageInput.read(dir.resolve("image" + i + ".png"));
                assertEquals(reference.get("sizes").get(i).get(0).asInt(), image.width());
                assertEquals(reference.get("sizes").get(i).get(1).asInt(), image.height());
                assertArrayEquals(WeightValues.floats(expected.get("pixels" + i)), processor.pixels(image), 1e-6f,
                        image.width() + "x" + image.height());
            }
        }
    }

    @Test
    void llavaConfigIsLoadedFromTheModelDirectory() throws IOException {
        ClipImageProcessor processor = ClipImageProcessor.load(resource("llava-default"));

        assertEquals(56, processor.outputHeight());
        assertEquals(56, processor.outputWidth());
        Path dir = resource("preprocessing");
        try (Checkpoint expected = Checkpoint.openFile(dir.resolve("pixels.safetensors"))) {
            ImageInput portrait = ImageInput.read(dir.resolve("image1.png"));
            assertArrayEquals(WeightValues.floats(expected.get("pixels1")), processor.pixels(portrait), 1e-6f);
        }
    }

    @Test
    void missingConfigGivesClipsDefaults(@TempDir Path dir) {
        ClipImageProcessor processor = ClipImageProcessor.load(dir);

        assertEquals(224, processor.outputHeight());
        assertEquals(224, processor.outputWidth());
        assertEquals(3 * 224 * 224, processor.pixels(ImageInput.rgb(3, 2, new byte[18])).length);
    }

    @Test
    void unsupportedResampleIsRefusedNamingIt(@TempDir Path dir) throws IOException {
        Files.writeString(dir.resolve(ClipImageProcessor.CONFIG_FILE), "{\"resample\": 0}");

        assertThrowsNaming(ConfigException.class, () -> ClipImageProcessor.load(dir),
                ClipImageProcessor.CONFIG_FILE, "resample", "0 (NEAREST)");
    }

    @Test
    void malformedConfigIsRefusedNamingFileAndField(@TempDir Path dir) throws IOException {
        Path file = dir.resolve(ClipImageProcessor.CONFIG_FILE);
        Files.writeString(file, "{\"size\": {\"shortest_edge\": \"big\"}}");
        assertThrowsNaming(ConfigException.class, () -> ClipImageProcessor.load(dir), file.toString(), "size.shortest_edge");

        Files.writeString(file, "{\"image_mean\": [0.5, 0.5]}");
        assertThrowsNaming(ConfigException.class, () -> ClipImageProcessor.load(dir), file.toString(), "image_mean");

        Files.writeString(file, "{\"do_resize\": true,");
        assertThrowsNaming(ConfigException.class, () -> ClipImageProcessor.load(dir), file.toString(), "not valid JSON");
    }

    @Test
    void imageSmallerThanTheCropIsPaddedWithZerosAroundIt() {
        ImageInput image = ImageInput.rgb(2, 2, new byte[]{10, 20, 30, 40, 50, 60, 70, 80, 90, 100, (byte) 110, (byte) 120});
        ClipImageProcessor raw = ClipImageProcessor.builder().doResize(false).cropSize(4, 4)
                .doRescale(false).doNormalize(false).build();

        float[] expected = {
                0, 0, 0, 0, /**/ 0, 10, 40, 0, /**/ 0, 70, 100, 0, /**/ 0, 0, 0, 0,
                0, 0, 0, 0, /**/ 0, 20, 50, 0, /**/ 0, 80, 110, 0, /**/ 0, 0, 0, 0,
                0, 0, 0, 0, /**/ 0, 30, 60, 0, /**/ 0, 90, 120, 0, /**/ 0, 0, 0, 0};
        assertArrayEquals(expected, raw.pixels(image));

        // Normalized, the padding is a zero sample's value, (0 - mean) / std.
        ClipImageProcessor normalized = ClipImageProcessor.builder().doResize(false).cropSize(4, 4).build();
        float[] pixels = normalized.pixels(image);
        for (int c = 0; c < 3; c++) {
            float mean = (float) CLIP_MEAN[c], std = (float) CLIP_STD[c];
            assertEquals((0f - mean) / std, pixels[c * 16], 0f);
            assertEquals(((float) ((10 + 10 * c) * (1 / 255.0)) - mean) / std, pixels[c * 16 + 5], 0f);
        }
    }

    @Test
    void oddPaddingPutsTheExtraZeroRowAndColumnBefore() {
        ClipImageProcessor raw = ClipImageProcessor.builder().doResize(false).cropSize(4, 4)
                .doRescale(false).doNormalize(false).build();

        float[] pixels = raw.pixels(ImageInput.rgb(1, 1, new byte[]{7, 8, 9}));

        for (int c = 0; c < 3; c++) {
            for (int i = 0; i < 16; i++) {
                assertEquals(i == 2 * 4 + 2 ? 7 + c : 0, pixels[c * 16 + i], "channel " + c + " sample " + i);
            }
        }
    }

    private static Path resource(String name) {
        try {
            return Path.of(ClipImageProcessorTest.class.getResource("/vision-goldens/" + name).toURI());
        } catch (URISyntaxException e) {
            throw new IllegalStateException(e);
        }
    }

    private static double[] doubles(JsonNode array) {
        double[] out = new double[array.size()];
        for (int i = 0; i < out.length; i++) out[i] = array.get(i).asDouble();
        return out;
    }

    /** Large outputs are resampled in bands of rows side by side: any banding gives the same values as one band. */
    @org.junit.jupiter.api.Test
    void bandsOfRowsGiveTheSameValuesAsOneBand() {
        java.util.SplittableRandom random = new java.util.SplittableRandom(3);
        byte[] rgb = new byte[3 * 700 * 500];
        for (int i = 0; i < rgb.length; i++) rgb[i] = (byte) random.nextInt(256);
        dev.jvllm.ImageInput image = dev.jvllm.ImageInput.rgb(700, 500, rgb);
        ClipImageProcessor[] processors = {
                ClipImageProcessor.builder().size(1008, 1344).resample(ClipImageProcessor.BILINEAR).doCenterCrop(false).build(),
                ClipImageProcessor.builder().size(1008, 1344).doCenterCrop(false).build(),
                ClipImageProcessor.builder().shortestEdge(300).cropSize(280, 280).build(),
                ClipImageProcessor.builder().doResize(false).cropSize(600, 800).build()};
        for (ClipImageProcessor processor : processors) {
            float[] whole = processor.pixels(image, Integer.MAX_VALUE);
            for (int band : new int[]{1, 7, 32}) {
                org.junit.jupiter.api.Assertions.assertArrayEquals(whole, processor.pixels(image, band), processor + ", bands of " + band);
            }
            org.junit.jupiter.api.Assertions.assertArrayEquals(whole, processor.pixels(image), processor + ", by its size");
        }
    }
}
