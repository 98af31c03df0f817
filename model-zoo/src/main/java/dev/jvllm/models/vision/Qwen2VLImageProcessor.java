package dev.jvllm.models.vision;

import com.fasterxml.jackson.databind.JsonNode;
import dev.jvllm.ImageInput;
import dev.jvllm.InvalidRequestException;
import dev.jvllm.config.ConfigException;

/**
 * Qwen2-VL's preprocessing: the image resized (Pillow's bicubic) to the multiple of patch × merge
 * pixels nearest its size within {@code [min_pixels, max_pixels]} ({@code smart_resize}), normalized,
 * and cut into patches listed merge window by merge window (each window's 2 × 2 patches row by row),
 * each patch channel-major [3, patch, patch]. The temporal copies Qwen2-VL's processor makes of a
 * still image are left to the tower, which sums its weights over them.
 */
public final class Qwen2VLImageProcessor {

    private final int patch;
    private final int merge;
    private final long minPixels;
    private final long maxPixels;
    private final int resample;
    private final double[] mean;
    private final double[] std;

    private Qwen2VLImageProcessor(int patch, int merge, long minPixels, long maxPixels, int resample, double[] mean, double[] std) {
        this.patch = patch;
        this.merge = merge;
        this.minPixels = minPixels;
        this.maxPixels = maxPixels;
        this.resample = resample;
        this.mean = mean;
        this.std = std;
    }

    /** From preprocessor_config.json (null: Qwen2-VL's defaults); {@code min_pixels}/{@code max_pixels} or {@code size}'s edges. */
    public static Qwen2VLImageProcessor of(JsonNode config, int patchSize, int mergeSize, String source) {
        JsonNode c = config == null ? com.fasterxml.jackson.databind.node.MissingNode.getInstance() : config;
        int patch = c.path("patch_size").asInt(patchSize), merge = c.path("merge_size").asInt(mergeSize);
        if (patch != patchSize || merge != mergeSize) {
            throw new ConfigException(source + ": the image processor's patch " + patch + " and merge " + merge
                    + " differ from the vision tower's " + patchSize + " and " + mergeSize);
        }
        long min = pixels(c, "min_pixels", "shortest_edge", 56 * 56, source);
        long max = pixels(c, "max_pixels", "longest_edge", 28L * 28 * 1280, source);
        if (min < 1 || max < min || max > ImageInput.MAX_PIXELS) {
            throw new ConfigException(source + ": min_pixels " + min + " and max_pixels " + max + " must satisfy 1 <= min <= max <= "
                    + ImageInput.MAX_PIXELS + " (the most pixels an image may have)");
        }
        double[] mean = ClipImageProcessor.channels(c, "image_mean", ClipImageProcessor.CLIP_MEAN, source);
        double[] std = ClipImageProcessor.channels(c, "image_std", ClipImageProcessor.CLIP_STD, source);
        int resample = c.path("resample").asInt(ClipImageProcessor.BICUBIC);
        try {  // the filter and the normalization are checked here, not at the first image
            ClipImageProcessor.builder().size(patch, patch).doCenterCrop(false).resample(resample).imageMean(mean).imageStd(std)
                    .build();
        } catch (ConfigException e) {
            throw new ConfigException(source + ": " + e.getMessage(), e);
        }
        return new Qwen2VLImageProcessor(patch, merge, min, max, resample, mean, std);
    }

    /** {@code field}, else {@code size}'s {@code edge}, else the default; a present value that is not a whole number is refused. */
    private static long pixels(JsonNode config, String field, String edge, long fallback, String source) {
        JsonNode value = config.has(field) ? config.get(field) : config.path("size").path(edge);
        if (value.isMissingNode() || value.isNull()) return fallback;
        if (!value.canConvertToLong() || !value.isIntegralNumber()) {
            throw new ConfigException(source + ": " + field + " must be a whole number of pixels, got " + value);
        }
        return value.asLong();
    }

    /** The most patches any image becomes. */
    public int maxPatches() {
        return (int) (maxPixels / ((long) patch * patch));
    }

    /**
     * The size {height, width} in pixels of an image that becomes the most patches: smart_resize keeps
     * sides that are multiples of patch × merge whose area is within max_pixels, so the best such pair
     * (aspect ratio up to 200), which a square need not be (max_pixels 28·28·3000: 3 360 × 2 800 pixels,
     * 12 000 patches, against 11 664 for the largest square).
     */
    public int[] largestSize() {
        int factor = patch * merge;
        long bestArea = 0;
        int[] best = {factor, factor};
        for (long h = factor; h * h <= 200L * maxPixels && h * factor <= maxPixels; h += factor) {
            long w = maxPixels / h / factor * factor;
            if (w < factor || Math.max(h, w) > 200 * Math.min(h, w)) continue;
            if (h * w > bestArea) {
                bestArea = h * w;
                best = new int[]{(int) h, (int) w};
            }
        }
        return best;
    }

    /** The image's size after smart_resize: {height, width} in pixels. */
    public int[] resized(ImageInput image) {
        return resized(image.width(), image.height());
    }

    /** The size after smart_resize of an image of {@code imageWidth × imageHeight} pixels: {height, width}. */
    public int[] resized(int imageWidth, int imageHeight) {
        double height = imageHeight, width = imageWidth;
        if (Math.max(height, width) / Math.min(height, width) > 200) {
            throw new InvalidRequestException("image", "an image of " + imageWidth + " × " + imageHeight
                    + " pixels: Qwen2-VL takes aspect ratios up to 200");
        }
        int factor = patch * merge;
        // Python's round: half to even.
        double h = Math.rint(height / factor) * factor, w = Math.rint(width / factor) * factor;
        if (h * w > maxPixels) {
            double beta = Math.sqrt(height * width / maxPixels);
            h = Math.max(factor, Math.floor(height / beta / factor) * factor);
            w = Math.max(factor, Math.floor(width / beta / factor) * factor);
        } else if (h * w < minPixels) {
            double beta = Math.sqrt(minPixels / (height * width));
            h = Math.ceil(height * beta / factor) * factor;
            w = Math.ceil(width * beta / factor) * factor;
        }
        return new int[]{(int) h, (int) w};
    }

    /** The image's grid of patches: {height, width}. */
    public int[] grid(ImageInput image) {
        int[] size = resized(image);
        return new int[]{size[0] / patch, size[1] / patch};
    }

    /** The patches, [height × width patches, 3 × patch × patch], merge window by merge window. */
    public float[] patches(ImageInput image) {
        int[] size = resized(image);
        int rh = size[0], rw = size[1], gh = rh / patch, gw = rw / patch, plane = rh * rw;
        float[] pixels = ClipImageProcessor.builder().size(rh, rw).doCenterCrop(false).resample(resample).imageMean(mean)
                .imageStd(std).build().pixels(image);
        int width = 3 * patch * patch;
        float[] out = new float[gh * gw * width];
        int row = 0;
        for (int by = 0; by < gh / merge; by++) {
            for (int bx = 0; bx < gw / merge; bx++) {
                for (int dy = 0; dy < merge; dy++) {
                    for (int dx = 0; dx < merge; dx++, row++) {
                        int y0 = (by * merge + dy) * patch, x0 = (bx * merge + dx) * patch, at = row * width;
                        for (int c = 0; c < 3; c++) {
                            for (int py = 0; py < patch; py++) {
                                System.arraycopy(pixels, c * plane + (y0 + py) * rw + x0, out, at, patch);
                                at += patch;
                            }
                        }
                    }
                }
            }
        }
        return out;
    }
}
