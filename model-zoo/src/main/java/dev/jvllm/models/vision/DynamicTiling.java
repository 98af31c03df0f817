package dev.jvllm.models.vision;

import dev.jvllm.ImageInput;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;

/**
 * InternVL's dynamic resolution (its {@code dynamic_preprocess}, Transformers' GotOcr2 {@code
 * crop_to_patches}): of the grids of {@code minTiles..maxTiles} tiles, the one whose aspect ratio is
 * closest to the image's (on a tie, the larger while the image covers more than half of it); the
 * image resized onto that grid and cut into tiles row by row, then, where there is more than one,
 * the whole image resized to one tile as a thumbnail.
 *
 * @param tile the tower's side in pixels
 */
public record DynamicTiling(int tile, int minTiles, int maxTiles, boolean thumbnail) {

    public DynamicTiling {
        if (tile < 1 || minTiles < 1 || maxTiles < minTiles) {
            throw new IllegalArgumentException("tiles of " + tile + " pixels, " + minTiles + " to " + maxTiles + " of them");
        }
    }

    /** The grid for an image of this size: {columns, rows}. */
    public int[] grid(int width, int height) {
        List<int[]> grids = new ArrayList<>();
        for (int w = 1; w <= maxTiles; w++) {
            for (int h = 1; h <= maxTiles; h++) {
                if (w * h >= minTiles && w * h <= maxTiles) grids.add(new int[]{w, h});
            }
        }
        grids.sort(Comparator.comparingInt(g -> g[0] * g[1]));  // stable, as Python's sorted
        double ratio = (double) width / height;
        double area = (double) width * height;
        int[] best = {1, 1};
        double bestDifference = Double.POSITIVE_INFINITY;
        for (int[] g : grids) {
            double difference = Math.abs(ratio - (double) g[0] / g[1]);
            if (difference < bestDifference) {
                bestDifference = difference;
                best = g;
            } else if (difference == bestDifference && area > 0.5 * tile * tile * g[0] * g[1]) {
                best = g;
            }
        }
        return best;
    }

    /** How many tiles an image of this size becomes, the thumbnail included. */
    public int tileCount(int width, int height) {
        int[] g = grid(width, height);
        int count = g[0] * g[1];
        return count + (thumbnail && count > 1 ? 1 : 0);
    }

    /** The most tiles any image becomes. */
    public int maxTileCount() {
        return maxTiles + (thumbnail && maxTiles > 1 ? 1 : 0);
    }

    /** Refuses, when a request arrives, an image whose resizes onto its grid or into the thumbnail cannot be made. */
    public void check(ImageInput image, ClipImageProcessor resampler) {
        int[] g = grid(image.width(), image.height());
        resampler.checkResize(image, g[0] * tile, g[1] * tile);
        if (thumbnail && g[0] * g[1] > 1) resampler.checkResize(image, tile, tile);
    }

    /** The tiles, as images of tile × tile pixels, resized with {@code resampler}'s filter as Pillow does. */
    public List<ImageInput> tiles(ImageInput image, ClipImageProcessor resampler) {
        int[] g = grid(image.width(), image.height());
        int cols = g[0], rows = g[1];
        int width = cols * tile;
        byte[] resized = resampler.resize(image, width, rows * tile).rgb();
        List<ImageInput> tiles = new ArrayList<>();
        for (int r = 0; r < rows; r++) {
            for (int c = 0; c < cols; c++) {
                byte[] piece = new byte[3 * tile * tile];
                for (int y = 0; y < tile; y++) {
                    System.arraycopy(resized, 3 * ((r * tile + y) * width + c * tile), piece, 3 * y * tile, 3 * tile);
                }
                tiles.add(ImageInput.rgb(tile, tile, piece));
            }
        }
        if (thumbnail && tiles.size() > 1) {
            tiles.add(resampler.resize(image, tile, tile));
        }
        return tiles;
    }
}
