package dev.jvllm.models.vision;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.jvllm.ImageInput;
import dev.jvllm.models.RuntimeAssumptions;
import dev.jvllm.weights.Checkpoint;
import dev.jvllm.weights.WeightValues;
import org.junit.jupiter.api.Test;

import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * LLaVA-NeXT's tiles and placeholder counts against the reference (tools/reference/make_vision_goldens.py:
 * Pillow's resizes, the grid Transformers selects, the counts its processor and model agree on).
 */
class AnyResolutionTilingTest {

    private static final List<int[]> GOLDEN_PINPOINTS = List.of(new int[]{56, 112}, new int[]{112, 56}, new int[]{112, 112},
            new int[]{56, 168});

    @Test
    void tilesAndCountsEqualTheReference() throws Exception {
        RuntimeAssumptions.requirePngDecoding();
        Path dir = Path.of(getClass().getResource("/vision-goldens/llava-next").toURI());
        JsonNode golden = new ObjectMapper().readTree(dir.resolve("goldens.json").toFile());
        ClipImageProcessor processor = ClipImageProcessor.load(dir);
        AnyResolutionTiling tiling = new AnyResolutionTiling(GOLDEN_PINPOINTS, 56, 4);
        try (Checkpoint reference = Checkpoint.openFile(dir.resolve("logits.safetensors"))) {
            for (int j = 0; j < golden.get("image_files").size(); j++) {
                ImageInput image = ImageInput.read(dir.resolve(golden.get("image_files").get(j).asText()));
                assertEquals(golden.get("feature_counts").get(j).asInt(), tiling.featureCount(image.height(), image.width()),
                        "placeholders of image " + j);
                List<ImageInput> tiles = tiling.tiles(image, processor);
                float[] expected = WeightValues.floats(reference.get("tiles" + j));
                int perTile = 3 * 56 * 56;
                assertEquals(expected.length / perTile, tiles.size(), "tiles of image " + j);
                for (int t = 0; t < tiles.size(); t++) {
                    float[] actual = processor.pixels(tiles.get(t));
                    for (int k = 0; k < perTile; k++) {
                        assertEquals(expected[t * perTile + k], actual[k], 1e-6, "image " + j + " tile " + t + " value " + k);
                    }
                }
            }
        }
    }

    /** llava-v1.6's grid on 336-pixel tiles: an 800 × 600 photo is seen at 672 × 672, its map cut to 36 of 48 rows. */
    @Test
    void aLandscapePhotoOnLlavaNextsGrid() {
        AnyResolutionTiling tiling = new AnyResolutionTiling(List.of(new int[]{336, 672}, new int[]{672, 336},
                new int[]{672, 672}, new int[]{1008, 336}, new int[]{336, 1008}), 336, 24);
        assertArrayEquals(new int[]{672, 672}, tiling.bestResolution(600, 800));
        assertEquals(new AnyResolutionTiling.Layout(2, 2, 6, 36, 0, 48), tiling.layout(600, 800));
        assertEquals(576 + 36 * 49, tiling.featureCount(600, 800));
        assertEquals(576 + 48 * 49, tiling.maxFeatureCount(), "the 672 × 672 grid uncut (1008 × 336 has 72 × 25)");
    }

    /** The map's rows run tile by tile across the grid, each ended by the newline row. */
    @Test
    void featureRowsWalkTheMapRowByRowAcrossTiles() {
        AnyResolutionTiling tiling = new AnyResolutionTiling(List.of(new int[]{2, 4}), 2, 2);
        // A 2 × 4 image fills a 1 × 2 grid of 2-pixel tiles (2 × 2 features each): nothing is cut.
        int[] rows = tiling.featureRows(tiling.layout(2, 4), 99);
        assertArrayEquals(new int[]{0, 1, 2, 3, 4, 5, 8, 9, 99, 6, 7, 10, 11, 99}, rows);
    }
}
