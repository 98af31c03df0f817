package dev.jvllm.models.vision;

import dev.jvllm.ImageInput;

import java.math.BigDecimal;
import java.math.RoundingMode;
import java.util.ArrayList;
import java.util.List;

/**
 * LLaVA-NeXT's "anyres" tiling (Transformers' LlavaNextImageProcessor and the model's
 * pack_image_features): the image scaled to fit the grid resolution that keeps most of its pixels,
 * centered on black, cut into tower-sized tiles after a tile of the whole image squashed; the tiles'
 * feature maps joined into one, the rows or columns of its padding cut off, each row ended by the
 * model's newline vector.
 *
 * @param pinpoints the grid resolutions, {height, width} each ({@code image_grid_pinpoints})
 * @param tile      the tower's side in pixels (the processor's crop)
 * @param side      the tower's patches along a side (tile / patch size)
 */
public record AnyResolutionTiling(List<int[]> pinpoints, int tile, int side) {

    /**
     * Where an image's features come from: the chosen grid of {@code rows × cols} tiles, and the
     * part of the joined feature map kept, rows {@code [top, top + height)} and columns
     * {@code [left, left + width)}.
     */
    public record Layout(int rows, int cols, int top, int height, int left, int width) {
    }

    /** The resolution {height, width} of the pinpoints that keeps most of the image, then wastes least. */
    public int[] bestResolution(int height, int width) {
        int[] best = null;
        long bestEffective = 0;
        long leastWaste = Long.MAX_VALUE;
        for (int[] p : pinpoints) {
            double scale = Math.min((double) p[1] / width, (double) p[0] / height);
            long effective = Math.min((long) (int) (width * scale) * (int) (height * scale), (long) width * height);
            long waste = (long) p[0] * p[1] - effective;
            if (effective > bestEffective || effective == bestEffective && waste < leastWaste) {
                best = p;
                bestEffective = effective;
                leastWaste = waste;
            }
        }
        return best;
    }

    /** The grid and the unpadded part of the feature map for an image of this size. */
    public Layout layout(int height, int width) {
        int[] best = bestResolution(height, width);
        int rows = best[0] / tile, cols = best[1] / tile;
        int mapHeight = rows * side, mapWidth = cols * side;
        if ((double) width / height > (double) mapWidth / mapHeight) {
            int kept = roundedDown(height * ((double) mapWidth / width));
            int padding = (mapHeight - kept) / 2;
            return new Layout(rows, cols, padding, mapHeight - 2 * padding, 0, mapWidth);
        }
        int kept = roundedDown(width * ((double) mapHeight / height));
        int padding = (mapWidth - kept) / 2;
        return new Layout(rows, cols, 0, mapHeight, padding, mapWidth - 2 * padding);
    }

    /** Python's {@code int(round(x, 7))}. */
    private static int roundedDown(double x) {
        return new BigDecimal(x).setScale(7, RoundingMode.HALF_EVEN).intValue();
    }

    /** Placeholder positions the image takes: the whole-image tile's features, then the kept map with a newline a row. */
    public int featureCount(int height, int width) {
        return featureCount(layout(height, width));
    }

    private int featureCount(Layout l) {
        return side * side + l.height() * (l.width() + 1);
    }

    /** The most positions any image can take: the largest grid, nothing cut off. */
    public int maxFeatureCount() {
        int most = 0;
        for (int[] p : pinpoints) {
            int h = p[0] / tile * side, w = p[1] / tile * side;
            most = Math.max(most, side * side + h * (w + 1));
        }
        return most;
    }

    /** How many tiles an image of this size becomes: the whole-image tile and the grid's. */
    public int tileCount(int height, int width) {
        Layout l = layout(height, width);
        return 1 + l.rows() * l.cols();
    }

    /** The most tiles any image becomes. */
    public int maxTileCount() {
        return 1 + tilesOf(pinpointOfMostTiles());
    }

    /** The resolution {height, width} of the pinpoints whose grid has the most tiles (an image of that size is cut so). */
    public int[] pinpointOfMostTiles() {
        int[] most = pinpoints.getFirst();
        for (int[] p : pinpoints) if (tilesOf(p) > tilesOf(most)) most = p;
        return most;
    }

    private int tilesOf(int[] pinpoint) {
        return (pinpoint[0] / tile) * (pinpoint[1] / tile);
    }

    /** The tiles, as images of tile × tile pixels: the whole image resized, then the grid's, row by row. */
    public List<ImageInput> tiles(ImageInput image, ClipImageProcessor resampler) {
        int h = image.height(), w = image.width();
        int[] best = bestResolution(h, w);
        int targetHeight = best[0], targetWidth = best[1];
        int newHeight, newWidth;
        if ((double) targetWidth / w < (double) targetHeight / h) {
            newWidth = targetWidth;
            newHeight = Math.min((int) Math.ceil(h * ((double) targetWidth / w)), targetHeight);
        } else {
            newHeight = targetHeight;
            newWidth = Math.min((int) Math.ceil(w * ((double) targetHeight / h)), targetWidth);
        }
        byte[] scaled = resampler.resize(image, newWidth, newHeight).rgb();
        byte[] padded = new byte[3 * targetHeight * targetWidth];
        int top = (targetHeight - newHeight) / 2, left = (targetWidth - newWidth) / 2;
        for (int y = 0; y < newHeight; y++) {
            System.arraycopy(scaled, 3 * y * newWidth, padded, 3 * ((top + y) * targetWidth + left), 3 * newWidth);
        }
        List<ImageInput> tiles = new ArrayList<>();
        tiles.add(resampler.resize(image, tile, tile));
        byte[] piece = new byte[3 * tile * tile];
        for (int ty = 0; ty < targetHeight; ty += tile) {
            for (int tx = 0; tx < targetWidth; tx += tile) {
                for (int y = 0; y < tile; y++) {
                    System.arraycopy(padded, 3 * ((ty + y) * targetWidth + tx), piece, 3 * y * tile, 3 * tile);
                }
                tiles.add(ImageInput.rgb(tile, tile, piece));
            }
        }
        return tiles;
    }

    /**
     * For each placeholder position of an image of that layout, the row of the tiles' features it takes (tile
     * after tile, side² rows each, the whole-image tile first), or {@code newlineRow} where a row
     * of the map ends.
     */
    public int[] featureRows(Layout l, int newlineRow) {
        int perTile = side * side;
        int[] rows = new int[featureCount(l)];
        int at = 0;
        for (int i = 0; i < perTile; i++) rows[at++] = i;
        for (int r = l.top(); r < l.top() + l.height(); r++) {
            for (int c = l.left(); c < l.left() + l.width(); c++) {
                int tileIndex = 1 + (r / side) * l.cols() + c / side;
                rows[at++] = tileIndex * perTile + (r % side) * side + c % side;
            }
            rows[at++] = newlineRow;
        }
        return rows;
    }
}
