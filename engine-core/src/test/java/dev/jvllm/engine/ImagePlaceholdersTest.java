package dev.jvllm.engine;

import dev.jvllm.ImageInput;
import dev.jvllm.InvalidRequestException;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** How a prompt's image placeholders become each image's span of positions. */
class ImagePlaceholdersTest {

    private static final int P = 9;
    private static final ImageInput SMALL = ImageInput.rgb(1, 1, new byte[3]);
    private static final ImageInput WIDE = ImageInput.rgb(2, 1, new byte[6]);

    /** SMALL takes 3 positions, WIDE 2. */
    private static ImagePlaceholders.Expanded expand(int[] ids, ImageInput... images) {
        return ImagePlaceholders.expand(ids, List.of(images), P, image -> image == SMALL ? 3 : 2);
    }

    @Test
    void aPlaceholderWrittenOnceBecomesItsImagesLength() {
        var e = expand(new int[]{1, P, 5, P, 6}, SMALL, WIDE);
        assertArrayEquals(new int[]{1, P, P, P, 5, P, P, 6}, e.tokenIds());
        assertEquals(List.of(new PromptImage(1, 3, SMALL), new PromptImage(5, 2, WIDE)), e.images());
    }

    @Test
    void adjacentPlaceholdersAreOneImageEach() {
        var e = expand(new int[]{1, P, P, 7}, SMALL, SMALL);
        assertArrayEquals(new int[]{1, P, P, P, P, P, P, 7}, e.tokenIds());
        assertEquals(List.of(new PromptImage(1, 3, SMALL), new PromptImage(4, 3, SMALL)), e.images());
    }

    @Test
    void placeholdersAlreadyExpandedAreKeptAndMayBeFollowedByASingleOne() {
        var kept = expand(new int[]{1, P, P, P, 2}, SMALL);
        assertArrayEquals(new int[]{1, P, P, P, 2}, kept.tokenIds());
        var mixed = expand(new int[]{P, P, P, P}, SMALL, SMALL);
        assertArrayEquals(new int[]{P, P, P, P, P, P}, mixed.tokenIds());
        assertEquals(List.of(new PromptImage(0, 3, SMALL), new PromptImage(3, 3, SMALL)), mixed.images());
    }

    /** InternVL's <img> and </img> (here 7 and 8) go around each image's placeholders, unless they are there already. */
    @Test
    void startAndEndTokensAreAddedAroundEachImageWhereMissing() {
        var e = ImagePlaceholders.expand(new int[]{1, P, P, 5, 7, P, 8}, List.of(SMALL, WIDE, SMALL), P, 7, 8,
                image -> image == SMALL ? 3 : 2);
        assertArrayEquals(new int[]{1, 7, P, P, P, 8, 7, P, P, 8, 5, 7, P, P, P, 8}, e.tokenIds());
        assertEquals(List.of(new PromptImage(2, 3, SMALL), new PromptImage(7, 2, WIDE), new PromptImage(12, 3, SMALL)),
                e.images());
        var expandedAndWrapped = ImagePlaceholders.expand(new int[]{7, P, P, 8}, List.of(WIDE), P, 7, 8, image -> 2);
        assertArrayEquals(new int[]{7, P, P, 8}, expandedAndWrapped.tokenIds());
    }

    /** Adjacent placeholders as many as the images, each image as long as the run: one placeholder an image. */
    @Test
    void aRunOfSinglePlaceholdersForAsManyImagesIsOneAnImage() {
        ImageInput a = ImageInput.rgb(1, 1, new byte[]{1, 0, 0}), b = ImageInput.rgb(1, 1, new byte[]{2, 0, 0});
        var e = ImagePlaceholders.expand(new int[]{1, P, P, 5}, List.of(a, b), P, image -> 2);
        assertArrayEquals(new int[]{1, P, P, P, P, 5}, e.tokenIds());
        assertEquals(List.of(new PromptImage(1, 2, a), new PromptImage(3, 2, b)), e.images());
    }

    @Test
    void aCountThatDoesNotMatchTheImagesIsRefusedNamingBoth() {
        var e = assertThrows(InvalidRequestException.class, () -> expand(new int[]{1, P, 2}, SMALL, WIDE));
        assertEquals("images", e.field());
        assertTrue(e.getMessage().contains("1 image placeholder (token id 9) for 2 images"), e.getMessage());
        var extra = assertThrows(InvalidRequestException.class, () -> expand(new int[]{P, 1, P}, SMALL));
        assertTrue(extra.getMessage().contains("2 image placeholders (token id 9) for 1 image"), extra.getMessage());
    }
}
