package dev.jvllm.models.vision;

import com.fasterxml.jackson.databind.JsonNode;
import dev.jvllm.ImageInput;
import dev.jvllm.InvalidRequestException;
import dev.jvllm.config.ConfigException;
import dev.jvllm.config.ModelConfig;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Phi-3-Vision's image preprocessing (the Hub's {@code Phi3VImageProcessor}, its "HD transform" after
 * InternLM-XComposer2-4KHD): the image, seen wider than tall (transposed when it is not), is scaled
 * with Pillow's bilinear filter to {@code scale} crops wide, the most whose grid stays within
 * {@code num_crops}, its height padded with white to whole crops, centered; normalized; then the tower
 * reads a bicubic view of the whole padded image (PyTorch's {@code interpolate}) followed by its crops,
 * row by row.
 */
public final class Phi3VImageProcessor {

    /**
     * How an image is cut: seen wider than tall ({@code transposed} where it is taller), it is scaled to
     * {@code scaledWidth × scaledHeight} in that orientation, then padded to whole crops; the grid,
     * {@code rows × cols} crops, is in the image's own orientation.
     */
    public record Layout(boolean transposed, int scaledWidth, int scaledHeight, int rows, int cols) {
        public int crops() {
            return rows * cols;
        }
    }

    private final int crop;
    private final int numCrops;
    private final float[] mean = new float[3];
    private final float[] std = new float[3];
    private final ClipImageProcessor bilinear;

    /**
     * @param crop     the tower's side in pixels (336 for Phi-3-Vision's CLIP)
     * @param numCrops the most crops an image becomes beside its global view
     */
    public Phi3VImageProcessor(int crop, int numCrops, double[] mean, double[] std) {
        if (crop < 1 || numCrops < 1) throw new IllegalArgumentException("crop " + crop + " and num_crops " + numCrops);
        if (mean.length != 3 || std.length != 3) throw new IllegalArgumentException("mean and std need 3 channels each");
        this.crop = crop;
        this.numCrops = numCrops;
        for (int c = 0; c < 3; c++) {
            if (!Float.isFinite((float) mean[c]) || !Float.isFinite((float) std[c]) || (float) std[c] == 0f) {
                throw new IllegalArgumentException("mean " + java.util.Arrays.toString(mean) + " and std " + java.util.Arrays.toString(std)
                        + " must be finite in float32, std not zero");
            }
            this.mean[c] = (float) mean[c];
            this.std[c] = (float) std[c];
        }
        // Only its resize (normalization off) is used.
        this.bilinear = ClipImageProcessor.builder().resample(ClipImageProcessor.BILINEAR).build();
    }

    /**
     * The processor of {@code preprocessor_config.json} in the model directory ({@code num_crops}, 1
     * where the file leaves it out, as the Hub's class; {@code image_mean}, {@code image_std}), or
     * what Phi-3-Vision ships (16 crops, CLIP's mean and std) where there is no such file.
     */
    public static Phi3VImageProcessor load(Path modelDirectory, int crop) {
        JsonNode json = modelDirectory == null ? null
                : ModelConfig.readOptionalJson(modelDirectory.resolve(ClipImageProcessor.CONFIG_FILE), 1L << 20);
        if (json == null) return new Phi3VImageProcessor(crop, 16, ClipImageProcessor.CLIP_MEAN, ClipImageProcessor.CLIP_STD);
        String source = modelDirectory.resolve(ClipImageProcessor.CONFIG_FILE).toString();
        JsonNode crops = json.path("num_crops");
        if (!crops.isMissingNode() && (!crops.canConvertToInt() || !crops.isIntegralNumber() || crops.asInt() < 1 || crops.asInt() > 64)) {
            throw new ConfigException(source + ": num_crops " + crops + " is not a whole number from 1 to 64");
        }
        double[] mean = ClipImageProcessor.channels(json, "image_mean", ClipImageProcessor.CLIP_MEAN, source);
        double[] std = ClipImageProcessor.channels(json, "image_std", ClipImageProcessor.CLIP_STD, source);
        try {
            return new Phi3VImageProcessor(crop, crops.asInt(1), mean, std);
        } catch (IllegalArgumentException e) {
            throw new ConfigException(source + ": " + e.getMessage(), e);
        }
    }

    public int numCrops() {
        return numCrops;
    }

    /**
     * The scaled size and crop grid of an image of this size.
     *
     * @throws InvalidRequestException (field {@code "image"}) where the image is too thin to scale
     */
    public Layout layout(int width, int height) {
        boolean transposed = width < height;
        int w = transposed ? height : width, h = transposed ? width : height;
        double ratio = (double) w / h;
        int scale = 1;
        while (scale * Math.ceil(scale / ratio) <= numCrops) scale++;
        scale--;
        int scaledWidth = scale * crop;
        int scaledHeight = (int) (scaledWidth / ratio);
        if (scaledHeight < 1) {
            throw new InvalidRequestException("image", "a " + width + "x" + height + " image is too thin for Phi-3-Vision's "
                    + "preprocessing: scaled to " + (transposed ? "a height" : "a width") + " of " + scaledWidth
                    + " pixels, its other side would be 0");
        }
        int across = scale, down = (int) Math.ceil((double) scaledHeight / crop);
        return transposed ? new Layout(true, scaledWidth, scaledHeight, across, down)
                : new Layout(false, scaledWidth, scaledHeight, down, across);
    }

    /**
     * Refuses, when a request arrives, an image this preprocessing cannot make: too thin to scale,
     * or a resize needing too many filter taps.
     */
    public void check(ImageInput image) {
        Layout l = layout(image.width(), image.height());
        if (l.transposed()) bilinear.checkResize(image, l.scaledHeight(), l.scaledWidth());
        else bilinear.checkResize(image, l.scaledWidth(), l.scaledHeight());
    }

    /** The pixel values the tower reads, each channel-major [3, crop, crop]: the global view, then the crops row by row. */
    public List<float[]> crops(ImageInput image) {
        Layout l = layout(image.width(), image.height());
        ImageInput oriented = l.transposed() ? transpose(image) : image;
        ImageInput scaled = bilinear.resize(oriented, l.scaledWidth(), l.scaledHeight());
        int paddedHeight = (int) Math.ceil((double) l.scaledHeight() / crop) * crop;
        int top = (paddedHeight - l.scaledHeight()) / 2;
        byte[] canvas = new byte[3 * l.scaledWidth() * paddedHeight];
        java.util.Arrays.fill(canvas, (byte) 255);
        scaled.asReadOnlyBuffer().get(0, canvas, 3 * top * l.scaledWidth(), 3 * l.scaledWidth() * l.scaledHeight());
        byte[] rgb = l.transposed() ? transpose(canvas, l.scaledWidth(), paddedHeight) : canvas;
        int width = l.transposed() ? paddedHeight : l.scaledWidth(), height = l.transposed() ? l.scaledWidth() : paddedHeight;
        float[][] values = normalization();
        List<float[]> out = new ArrayList<>(1 + l.crops());
        out.add(bicubic(rgb, values, height, width, crop, crop));
        // The crops side by side, each normalized from the bytes as it is cut.
        out.addAll(java.util.stream.IntStream.range(0, l.rows() * l.cols()).parallel().mapToObj(i -> {
            int left = (i % l.cols()) * crop, first = (i / l.cols()) * crop;
            float[] piece = new float[3 * crop * crop];
            for (int y = 0; y < crop; y++) {
                int from = 3 * ((first + y) * width + left);
                for (int x = 0; x < crop; x++) {
                    for (int ch = 0; ch < 3; ch++) piece[(ch * crop + y) * crop + x] = values[ch][rgb[from + 3 * x + ch] & 0xFF];
                }
            }
            return piece;
        }).toList());
        return out;
    }

    /** The image with rows and columns swapped (Pillow's TRANSPOSE). */
    static ImageInput transpose(ImageInput image) {
        return ImageInput.rgb(image.height(), image.width(), transpose(image.rgb(), image.width(), image.height()));
    }

    /** Interleaved RGB bytes of a w × h image transposed: those of an h × w one. */
    private static byte[] transpose(byte[] in, int w, int h) {
        byte[] out = new byte[in.length];
        for (int y = 0; y < h; y++) {
            for (int x = 0; x < w; x++) {
                int from = 3 * (y * w + x), to = 3 * (x * h + y);
                out[to] = in[from];
                out[to + 1] = in[from + 1];
                out[to + 2] = in[from + 2];
            }
        }
        return out;
    }

    /**
     * {@code ToTensor} then {@code Normalize}, in float32 as torchvision computes them, of each byte
     * value a channel can hold: [3][256]. A channel's value depends on its byte alone, so each is
     * computed once, by the same expression, and looked up (a 16-crop image is 4 million values; a
     * division each took a fifth of the transform's time).
     */
    private float[][] normalization() {
        float[][] values = new float[3][256];
        for (int c = 0; c < 3; c++) {
            for (int v = 0; v < 256; v++) values[c][v] = (v / 255f - mean[c]) / std[c];
        }
        return values;
    }

    private static final float CUBIC_A = -0.75f;

    /**
     * PyTorch's {@code interpolate(mode="bicubic", align_corners=False)} of the normalized image
     * (interleaved bytes {@code rgb} of h × w, each sample's value {@code values[channel][byte]}) to
     * channel-major [3, outH, outW]: Keys' cubic with a = -0.75 over the 4 × 4 nearest samples, edges
     * repeated, no antialiasing, in float32.
     */
    static float[] bicubic(byte[] rgb, float[][] values, int h, int w, int outH, int outW) {
        float scaleY = (float) h / outH, scaleX = (float) w / outW;
        int[] x0 = new int[outW];
        float[][] wx = new float[outW][];
        for (int ox = 0; ox < outW; ox++) {
            float real = scaleX * (ox + 0.5f) - 0.5f;
            x0[ox] = (int) Math.floor(real);
            wx[ox] = cubicWeights(real - x0[ox]);
        }
        float[] out = new float[3 * outH * outW];
        java.util.stream.IntStream.range(0, 3 * outH).parallel().forEach(channelRow -> {
            int c = channelRow / outH, oy = channelRow % outH;
            float[] value = values[c];
            float real = scaleY * (oy + 0.5f) - 0.5f;
            int y0 = (int) Math.floor(real);
            float[] wy = cubicWeights(real - y0);
            float[] rowValues = new float[4];
            for (int ox = 0; ox < outW; ox++) {
                for (int k = 0; k < 4; k++) {
                    int row = Math.clamp(y0 - 1 + k, 0, h - 1) * w;
                    float sum = 0;
                    for (int j = 0; j < 4; j++) sum += value[rgb[3 * (row + Math.clamp(x0[ox] - 1 + j, 0, w - 1)) + c] & 0xFF] * wx[ox][j];
                    rowValues[k] = sum;
                }
                float sum = 0;
                for (int k = 0; k < 4; k++) sum += rowValues[k] * wy[k];
                out[(c * outH + oy) * outW + ox] = sum;
            }
        });
        return out;
    }

    private static float[] cubicWeights(float t) {
        float a = CUBIC_A;
        float x1 = t + 1, x2 = 1 - t, x3 = 2 - t;
        return new float[]{
                ((a * x1 - 5 * a) * x1 + 8 * a) * x1 - 4 * a,
                ((a + 2) * t - (a + 3)) * t * t + 1,
                ((a + 2) * x2 - (a + 3)) * x2 * x2 + 1,
                ((a * x3 - 5 * a) * x3 + 8 * a) * x3 - 4 * a};
    }
}
