package dev.jvllm.models.vision;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.StreamReadConstraints;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.jvllm.ImageInput;
import dev.jvllm.InvalidRequestException;
import dev.jvllm.config.ConfigException;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Objects;
import java.util.Optional;
import java.util.OptionalDouble;
import java.util.OptionalInt;

/**
 * Transformers' {@code CLIPImageProcessor} as LLaVA uses it: resize (Pillow's bicubic or bilinear
 * filter, bit-exact), center crop, rescale and normalize, giving the vision tower's
 * {@code pixel_values} for one image. Immutable and safe to share between threads.
 *
 * <p>The resize reproduces Pillow's {@code Image.resize} on 8-bit RGB (its fixed-point two-pass
 * convolution, horizontal pass first); the crop pads with zeros where the image is smaller than
 * the crop, as Transformers' {@code center_crop} does; rescale and normalize round as Transformers
 * does (the product in double, then float32 arithmetic).
 */
public final class ClipImageProcessor {

    /** The file {@link #load} reads from a model directory. */
    public static final String CONFIG_FILE = "preprocessor_config.json";

    /** Pillow's {@code Image.BILINEAR}. */
    public static final int BILINEAR = 2;

    /** Pillow's {@code Image.BICUBIC}, CLIP's resample filter. */
    public static final int BICUBIC = 3;

    /** Output rows a band of {@link #pixels} takes, where outputs of {@link #PARALLEL_SAMPLES} samples or more run in bands side by side. */
    private static final int BAND_ROWS = 32;
    private static final long PARALLEL_SAMPLES = 1L << 18;
    static final double[] CLIP_MEAN = {0.48145466, 0.4578275, 0.40821073};
    static final double[] CLIP_STD = {0.26862954, 0.26130258, 0.27577711};

    private static final long MAX_CONFIG_BYTES = 1L << 20;
    private static final ObjectMapper JSON = new ObjectMapper(JsonFactory.builder()
            .streamReadConstraints(StreamReadConstraints.builder().maxNestingDepth(64).maxStringLength(1 << 16).build())
            .build())
            .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS);

    /** Pillow's fixed-point precision for 8-bit images (Resample.c). */
    private static final int PRECISION_BITS = 32 - 8 - 2;
    /** The most filter taps one resize may hold, against absurdly elongated images. */
    private static final long MAX_TAPS = 1L << 26;

    private final boolean doResize;
    private final int shortestEdge;
    private final int resizeHeight;
    private final int resizeWidth;
    private final int resample;
    private final boolean doCenterCrop;
    private final int cropHeight;
    private final int cropWidth;
    private final boolean doRescale;
    private final double rescaleFactor;
    private final boolean doNormalize;
    private final float[] mean;
    private final float[] std;
    /** The output value of each channel's 8-bit sample: rescaled and normalized. */
    private final float[][] values;

    private ClipImageProcessor(Builder b, String source) {
        if (b.doResize) {
            if (b.byShortestEdge) {
                requirePositive(b.shortestEdge, source, "size.shortest_edge");
            } else {
                requirePositive(b.resizeHeight, source, "size.height");
                requirePositive(b.resizeWidth, source, "size.width");
            }
            if (b.resample != BILINEAR && b.resample != BICUBIC) {
                throw invalid(source, "resample", "is " + b.resample + " (" + filterName(b.resample)
                        + "); only 2 (BILINEAR) and 3 (BICUBIC) are supported");
            }
        }
        if (b.doCenterCrop) {
            requirePositive(b.cropHeight, source, "crop_size.height");
            requirePositive(b.cropWidth, source, "crop_size.width");
        }
        if (b.doRescale && !Double.isFinite(b.rescaleFactor)) {
            throw invalid(source, "rescale_factor", "must be a finite number, got " + b.rescaleFactor);
        }
        if (b.doNormalize) {
            requireChannels(b.imageMean, source, "image_mean", false);
            requireChannels(b.imageStd, source, "image_std", true);
        }
        this.doResize = b.doResize;
        this.shortestEdge = b.byShortestEdge ? b.shortestEdge : 0;
        this.resizeHeight = b.resizeHeight;
        this.resizeWidth = b.resizeWidth;
        this.resample = b.resample;
        this.doCenterCrop = b.doCenterCrop;
        this.cropHeight = b.cropHeight;
        this.cropWidth = b.cropWidth;
        this.doRescale = b.doRescale;
        this.rescaleFactor = b.rescaleFactor;
        this.doNormalize = b.doNormalize;
        this.mean = new float[3];
        this.std = new float[3];
        if (doNormalize) {
            for (int c = 0; c < 3; c++) {
                mean[c] = (float) b.imageMean[c];
                std[c] = (float) b.imageStd[c];
            }
        }
        this.values = new float[3][256];
        for (int c = 0; c < 3; c++) {
            for (int v = 0; v < 256; v++) {
                float x = doRescale ? (float) (v * rescaleFactor) : v;
                values[c][v] = doNormalize ? (x - mean[c]) / std[c] : x;
            }
        }
    }

    /** CLIP's defaults: shortest edge 224, bicubic, crop 224×224, 1/255, CLIP's mean and std. */
    public static ClipImageProcessor defaults() {
        return builder().build();
    }

    /**
     * CLIP's defaults for a vision tower reading {@code imageSize} × {@code imageSize} pixels: the
     * shortest edge resized to {@code imageSize}, then a center crop of that square.
     */
    public static ClipImageProcessor forSquare(int imageSize) {
        return builder().shortestEdge(imageSize).cropSize(imageSize, imageSize).build();
    }

    /** A builder starting from CLIP's {@linkplain #defaults() defaults}. */
    public static Builder builder() {
        return new Builder();
    }

    /**
     * The processor of a model directory's {@value #CONFIG_FILE}; fields it lacks take CLIP's
     * defaults, and so does every field when the file is absent.
     *
     * @throws ConfigException if the file is not valid JSON, or a field has the wrong type or an
     *                         unsupported value (the message names the file and the field)
     */
    public static ClipImageProcessor load(Path modelDirectory) {
        Path file = modelDirectory.resolve(CONFIG_FILE);
        String source = file.toString();
        JsonNode json;
        try {
            if (Files.size(file) > MAX_CONFIG_BYTES) {
                throw new ConfigException(source + ": larger than " + MAX_CONFIG_BYTES + " bytes");
            }
            json = JSON.readTree(file.toFile());
        } catch (NoSuchFileException e) {
            return defaults();
        } catch (IOException e) {
            throw new ConfigException(source + ": not valid JSON: " + e.getMessage(), e);
        }
        if (json == null || !json.isObject()) {
            throw new ConfigException(source + ": expected a JSON object");
        }
        Fields f = new Fields(json, source, "");
        Builder b = builder();
        f.bool("do_resize").ifPresent(b::doResize);
        f.node("size").ifPresent(size -> {
            if (size.isObject()) {
                Fields s = f.object("size");
                OptionalInt shortest = s.integer("shortest_edge");
                if (shortest.isPresent()) {
                    b.shortestEdge(shortest.getAsInt());
                } else if (s.node("height").isPresent() && s.node("width").isPresent()) {
                    b.size(s.required("height"), s.required("width"));
                } else {
                    throw f.invalid("size", "must hold shortest_edge, or height and width, got " + size);
                }
            } else {
                b.shortestEdge(f.integer("size").getAsInt());
            }
        });
        f.integer("resample").ifPresent(b::resample);
        f.bool("do_center_crop").ifPresent(b::doCenterCrop);
        f.node("crop_size").ifPresent(crop -> {
            if (crop.isObject()) {
                Fields s = f.object("crop_size");
                b.cropSize(s.required("height"), s.required("width"));
            } else {
                int side = f.integer("crop_size").getAsInt();
                b.cropSize(side, side);
            }
        });
        f.bool("do_rescale").ifPresent(b::doRescale);
        f.number("rescale_factor").ifPresent(b::rescaleFactor);
        f.bool("do_normalize").ifPresent(b::doNormalize);
        f.channels("image_mean").ifPresent(b::imageMean);
        f.channels("image_std").ifPresent(b::imageStd);
        return b.build(source);
    }

    /**
     * The height of {@link #pixels}'s output when it does not depend on the image: the crop's
     * height when cropping, else the fixed resize height.
     *
     * @throws IllegalStateException if it depends on the image (no crop, and a shortest-edge
     *                               resize or none): use {@link #outputHeight(ImageInput)}
     */
    public int outputHeight() {
        if (doCenterCrop) return cropHeight;
        if (doResize && shortestEdge == 0) return resizeHeight;
        throw new IllegalStateException("without a center crop, the output height depends on the image");
    }

    /**
     * The width of {@link #pixels}'s output when it does not depend on the image: the crop's width
     * when cropping, else the fixed resize width.
     *
     * @throws IllegalStateException if it depends on the image (no crop, and a shortest-edge
     *                               resize or none): use {@link #outputWidth(ImageInput)}
     */
    public int outputWidth() {
        if (doCenterCrop) return cropWidth;
        if (doResize && shortestEdge == 0) return resizeWidth;
        throw new IllegalStateException("without a center crop, the output width depends on the image");
    }

    /** The height of {@link #pixels}'s output for {@code image}. */
    public int outputHeight(ImageInput image) {
        return doCenterCrop ? cropHeight : resized(image)[0];
    }

    /** The width of {@link #pixels}'s output for {@code image}. */
    public int outputWidth(ImageInput image) {
        return doCenterCrop ? cropWidth : resized(image)[1];
    }

    /**
     * Pillow's resize of the image to {@code width × height} with this processor's filter, 8 bits a
     * sample as Pillow computes them (LLaVA-NeXT's tiles are cut from such a resize).
     */
    public ImageInput resize(ImageInput image, int width, int height) {
        if (width < 1 || height < 1) throw new IllegalArgumentException("cannot resize to " + width + "x" + height);
        if (image.width() == width && image.height() == height) return image;
        if ((long) width * height > ImageInput.MAX_PIXELS) throw tooLarge(image, "its resize would be " + width + "x" + height);
        byte[] rgb = new byte[3 * width * height];
        // Interleaved samples as they come, without the float planes and the normalization.
        resampleRows(image, height, width, 0, 0, height, width, 0, (row, at) -> {
            for (int j = 0; j < row.length; j++) rgb[3 * at + j] = (byte) row[j];
        });
        return ImageInput.rgb(width, height, rgb);
    }

    /** The target of the shortest edge, or 0 where the resize is to a fixed size or off. */
    public int shortestEdge() {
        return doResize ? shortestEdge : 0;
    }

    /**
     * The pixel values of {@code image}, channel-major {@code [3, height, width]} (the
     * {@linkplain #outputHeight(ImageInput) output size}) as float32.
     *
     * @throws InvalidRequestException (field {@code "image"}) if the image's shape makes the
     *                                 output or the resize too large
     */
    public float[] pixels(ImageInput image) {
        return pixels(image, 0);
    }

    /** As {@link #pixels(ImageInput)}, in bands of {@code bandRows} output rows (0: by the output's size). */
    float[] pixels(ImageInput image, int bandRows) {
        Objects.requireNonNull(image, "image");
        int[] resized = resized(image);
        int rh = resized[0], rw = resized[1];
        int oh = doCenterCrop ? cropHeight : rh, ow = doCenterCrop ? cropWidth : rw;
        if ((long) oh * ow > ImageInput.MAX_PIXELS) {
            throw tooLarge(image, "the output would be " + ow + "x" + oh);
        }
        // The crop's place in the resized image (negative where it pads).
        int top = doCenterCrop ? Math.floorDiv(rh - oh, 2) : 0;
        int left = doCenterCrop ? Math.floorDiv(rw - ow, 2) : 0;
        float[] out = new float[3 * oh * ow];
        int plane = oh * ow;
        if (top < 0 || left < 0 || top + oh > rh || left + ow > rw) {
            for (int c = 0; c < 3; c++) Arrays.fill(out, c * plane, (c + 1) * plane, values[c][0]);
        }
        resampleRows(image, rh, rw, top, left, oh, ow, bandRows, (row, at) -> store(row, out, at, plane));
        return out;
    }

    /** Where a band puts one row of interleaved 8-bit samples: at pixel {@code at} of the output. */
    private interface RowSink {
        void put(int[] row, int at);
    }

    /**
     * Resamples the image to {@code rh × rw} and hands each output row inside the {@code oh × ow}
     * window at ({@code top}, {@code left}) to {@code sink} (only those samples are computed), in
     * bands of {@code bandRows} output rows (0: by the output's size), side by side.
     */
    private void resampleRows(ImageInput image, int rh, int rw, int top, int left, int oh, int ow, int bandRows, RowSink sink) {
        int h = image.height(), w = image.width();
        // The crop's place in the resized image (negative where it pads); only the resized
        // samples inside the crop, rows y0..y1 and columns x0..x1, are computed.
        int y0 = Math.max(0, top), y1 = Math.min(rh, top + oh);
        int x0 = Math.max(0, left), x1 = Math.min(rw, left + ow);
        int cols = x1 - x0;

        Taps horizontal = rw != w ? taps(w, rw, x0, x1, image) : null;
        Taps vertical = rh != h ? taps(h, rh, y0, y1, image) : null;
        // Bands of output rows side by side where the output is large (Phi-3-Vision's scale to 16 crops:
        // 1.4 million samples); each band resamples the input rows it draws on, those at band edges twice.
        int rows = y1 - y0;
        int band = Math.min(Math.max(rows, 1), bandRows > 0 ? bandRows : (long) rows * cols < PARALLEL_SAMPLES ? rows : BAND_ROWS);
        int bands = (rows + band - 1) / band;
        java.util.stream.IntStream bandIndices = java.util.stream.IntStream.range(0, bands);
        (bands > 1 ? bandIndices.parallel() : bandIndices).forEach(b -> resampleBand(image, horizontal, vertical,
                y0 + b * band, Math.min(y1, y0 + (b + 1) * band), y0, x0, cols, top, left, ow, sink));
    }

    /**
     * Output rows {@code from..to} (of the resized image; {@code y0} the first one computed) into
     * {@code out}: each input row they draw on resampled across (Pillow's horizontal pass), then the
     * vertical pass accumulating each output sample over those rows (Pillow's sums, in another
     * order of exact int additions, so the same bytes).
     */
    private void resampleBand(ImageInput image, Taps horizontal, Taps vertical, int from, int to, int y0, int x0, int cols,
                              int top, int left, int ow, RowSink sink) {
        int w = image.width();
        ByteBuffer source = image.asReadOnlyBuffer();
        byte[] inRow = new byte[3 * w];
        int[] row = new int[3 * cols];
        if (vertical == null) {
            for (int sy = from; sy < to; sy++) {
                readRow(source, sy, w, inRow, horizontal, x0, row);
                sink.put(row, (sy - top) * ow + (x0 - left));
            }
            return;
        }
        int first = from - y0, end = to - y0;
        if (first >= end) return;
        int firstInput = vertical.start[first], endInput = vertical.endInput(first, end);
        int[] sums = new int[3 * cols * (end - first)];
        Arrays.fill(sums, 1 << (PRECISION_BITS - 1));
        for (int sy = firstInput; sy < endInput; sy++) {
            readRow(source, sy, w, inRow, horizontal, x0, row);
            for (int i = first; i < end; i++) {
                if (sy < vertical.start[i] || sy >= vertical.end(i)) continue;
                int k = vertical.taps[vertical.offset[i] + sy - vertical.start[i]];
                int base = (i - first) * 3 * cols;
                for (int j = 0; j < 3 * cols; j++) sums[base + j] += row[j] * k;
            }
        }
        for (int i = first; i < end; i++) {
            int base = (i - first) * 3 * cols;
            for (int j = 0; j < 3 * cols; j++) row[j] = clip8(sums[base + j]);
            sink.put(row, (y0 + i - top) * ow + (x0 - left));
        }
    }

    /** Input row {@code sy}'s samples from column {@code x0}, resampled across where {@code horizontal} says. */
    private static void readRow(ByteBuffer source, int sy, int w, byte[] inRow, Taps horizontal, int x0, int[] row) {
        source.get(3 * sy * w, inRow);
        if (horizontal == null) {
            for (int i = 0; i < row.length; i++) row[i] = inRow[3 * x0 + i] & 0xFF;
        } else {
            resampleRow(inRow, horizontal, row);
        }
    }

    /** Writes one row of interleaved 8-bit samples into the channel planes at {@code at}. */
    private void store(int[] row, float[] out, int at, int plane) {
        float[] r = values[0], g = values[1], b = values[2];
        for (int x = 0, p = 0; p < row.length; x++, p += 3) {
            out[at + x] = r[row[p]];
            out[plane + at + x] = g[row[p + 1]];
            out[2 * plane + at + x] = b[row[p + 2]];
        }
    }

    /** Pillow's horizontal pass over one row of interleaved RGB. */
    private static void resampleRow(byte[] in, Taps t, int[] out) {
        int[] taps = t.taps;
        for (int j = 0, o = 0; j < t.count(); j++, o += 3) {
            int s0 = 1 << (PRECISION_BITS - 1), s1 = s0, s2 = s0;
            int p = 3 * t.start[j];
            for (int x = t.offset[j], end = t.offset[j + 1]; x < end; x++, p += 3) {
                int k = taps[x];
                s0 += (in[p] & 0xFF) * k;
                s1 += (in[p + 1] & 0xFF) * k;
                s2 += (in[p + 2] & 0xFF) * k;
            }
            out[o] = clip8(s0);
            out[o + 1] = clip8(s1);
            out[o + 2] = clip8(s2);
        }
    }

    private static int clip8(int sum) {
        return Math.clamp(sum >> PRECISION_BITS, 0, 255);
    }

    /**
     * Transformers' output size of the resize, {height, width}: the shortest edge scaled to the
     * target and the other truncated from {@code size * long / short}, a fixed size, or the image's.
     */
    private int[] resized(ImageInput image) {
        long h = image.height(), w = image.width();
        if (!doResize) return new int[]{(int) h, (int) w};
        if (shortestEdge == 0) return new int[]{resizeHeight, resizeWidth};
        long rh = w <= h ? (long) ((double) (shortestEdge * h) / w) : shortestEdge;
        long rw = w <= h ? shortestEdge : (long) ((double) (shortestEdge * w) / h);
        if (rh > Integer.MAX_VALUE || rw > Integer.MAX_VALUE) {
            throw tooLarge(image, "its resize would be " + rw + "x" + rh);
        }
        return new int[]{(int) rh, (int) rw};
    }

    /**
     * Refuses, as {@link #pixels} would, a resize of {@code image} to {@code width × height} that
     * needs too many filter taps: for checking an image when its request arrives rather than when
     * a forward pass preprocesses it.
     *
     * @throws InvalidRequestException (field {@code "image"}) naming the side and the sizes
     */
    public void checkResize(ImageInput image, int width, int height) {
        checkTaps(image.width(), width, image);
        checkTaps(image.height(), height, image);
    }

    private void checkTaps(int inSize, int outSize, ImageInput image) {
        double scale = (double) (float) inSize / outSize;
        double support = (resample == BICUBIC ? 2.0 : 1.0) * Math.max(scale, 1.0);
        long total = 0;
        for (int i = 0; i < outSize; i++) {
            double center = (i + 0.5) * scale;
            total += Math.max(0, Math.min(inSize, (int) (center + support + 0.5)) - Math.max(0, (int) (center - support + 0.5)));
            if (total > MAX_TAPS) {
                throw tooLarge(image, "resizing its side of " + inSize + " to " + outSize + " needs too many filter taps");
            }
        }
    }

    /**
     * The fixed-point filter taps of output samples {@code from..to} of a resize of an axis from
     * {@code inSize} to {@code outSize}, as Pillow's precompute_coeffs and normalize_coeffs_8bpc.
     */
    private Taps taps(int inSize, int outSize, int from, int to, ImageInput image) {
        double filterSupport = resample == BICUBIC ? 2.0 : 1.0;
        // Pillow takes the input extent from the float box (0, 0, width, height).
        double scale = (double) (float) inSize / outSize;
        double filterScale = Math.max(scale, 1.0);
        double support = filterSupport * filterScale;
        double ss = 1.0 / filterScale;
        int n = to - from;
        int[] start = new int[n];
        int[] offset = new int[n + 1];
        long total = 0;
        int widest = 0;
        for (int i = 0; i < n; i++) {
            double center = (from + i + 0.5) * scale;
            int xmin = Math.max(0, (int) (center - support + 0.5));
            int xmax = Math.min(inSize, (int) (center + support + 0.5));
            start[i] = xmin;
            total += Math.max(0, xmax - xmin);
            widest = Math.max(widest, xmax - xmin);
            if (total > MAX_TAPS) {
                throw tooLarge(image, "resizing its side of " + inSize + " to " + outSize + " needs too many filter taps");
            }
            offset[i + 1] = (int) total;
        }
        int[] taps = new int[(int) total];
        double[] w = new double[widest];
        for (int i = 0; i < n; i++) {
            double center = (from + i + 0.5) * scale;
            int xmin = start[i], count = offset[i + 1] - offset[i];
            double sum = 0.0;
            for (int x = 0; x < count; x++) {
                double v = filter((x + xmin - center + 0.5) * ss);
                w[x] = v;
                sum += v;
            }
            for (int x = 0; x < count; x++) {
                double v = sum != 0.0 ? w[x] / sum : w[x];
                taps[offset[i] + x] = (int) (v < 0 ? -0.5 + v * (1 << PRECISION_BITS) : 0.5 + v * (1 << PRECISION_BITS));
            }
        }
        return new Taps(start, offset, taps);
    }

    private double filter(double x) {
        if (x < 0.0) x = -x;
        if (resample == BILINEAR) {
            return x < 1.0 ? 1.0 - x : 0.0;
        }
        final double a = -0.5;
        if (x < 1.0) {
            return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
        }
        if (x < 2.0) {
            return (((x - 5) * x + 8) * x - 4) * a;
        }
        return 0.0;
    }

    /**
     * Filter taps of consecutive output samples: sample {@code i} reads inputs from
     * {@code start[i]} with weights {@code taps[offset[i]..offset[i + 1])}.
     */
    private record Taps(int[] start, int[] offset, int[] taps) {

        int count() {
            return start.length;
        }

        int end(int i) {
            return start[i] + offset[i + 1] - offset[i];
        }

        /** The end of the input rows or columns that outputs {@code from..to} draw on. */
        int endInput(int from, int to) {
            int end = 0;
            for (int i = from; i < to; i++) end = Math.max(end, end(i));
            return end;
        }
    }

    /**
     * A preprocessor config's per-channel {@code field} ({@code image_mean}, {@code image_std}): 3
     * numbers, or one for all three, as the processors read it; {@code fallback} where it is absent.
     *
     * @throws ConfigException naming {@code source} and the field where it is neither
     */
    static double[] channels(JsonNode config, String field, double[] fallback, String source) {
        if (config == null || config.path(field).isMissingNode() || config.path(field).isNull()) {
            return fallback == null ? null : fallback.clone();
        }
        double[] values = new Fields(config, source, "").channels(field).orElseThrow();
        requireChannels(values, source, field, field.equals("image_std"));
        return values;
    }

    /** The settings, for logs. */
    @Override
    public String toString() {
        String resize = !doResize ? "no resize"
                : (shortestEdge != 0 ? "shortest edge " + shortestEdge : resizeWidth + "x" + resizeHeight)
                + " " + filterName(resample);
        String crop = doCenterCrop ? "crop " + cropWidth + "x" + cropHeight : "no crop";
        return "ClipImageProcessor[" + resize + ", " + crop + ", rescale " + (doRescale ? rescaleFactor : "off")
                + ", normalize " + (doNormalize ? Arrays.toString(mean) + " / " + Arrays.toString(std) : "off") + "]";
    }

    private static String filterName(int resample) {
        return switch (resample) {
            case 0 -> "NEAREST";
            case 1 -> "LANCZOS";
            case BILINEAR -> "BILINEAR";
            case BICUBIC -> "BICUBIC";
            case 4 -> "BOX";
            case 5 -> "HAMMING";
            default -> "unknown";
        };
    }

    private static InvalidRequestException tooLarge(ImageInput image, String why) {
        return new InvalidRequestException("image", "a " + image.width() + "x" + image.height()
                + " image cannot be preprocessed: " + why);
    }

    private static void requirePositive(int value, String source, String field) {
        if (value < 1) throw invalid(source, field, "must be a positive integer, got " + value);
    }

    private static void requireChannels(double[] values, String source, String field, boolean nonZero) {
        if (values == null || values.length != 3) {
            throw invalid(source, field, "must hold 3 numbers, got " + (values == null ? "none" : values.length));
        }
        for (double v : values) {
            if (!Float.isFinite((float) v) || (nonZero && (float) v == 0f)) {  // as the float32 the pixels use
                throw invalid(source, field, "must hold finite" + (nonZero ? ", non-zero" : "") + " numbers, got "
                        + Arrays.toString(values));
            }
        }
    }

    private static ConfigException invalid(String source, String field, String problem) {
        return new ConfigException(source + ": field '" + field + "' " + problem);
    }

    /** Typed reads of one JSON object's fields; a wrong type is a {@link ConfigException} naming the field. */
    private record Fields(JsonNode json, String source, String path) {

        Optional<JsonNode> node(String field) {
            JsonNode n = json.get(field);
            return n == null || n.isNull() ? Optional.empty() : Optional.of(n);
        }

        Optional<Boolean> bool(String field) {
            return node(field).map(n -> {
                if (!n.isBoolean()) throw wrongType(field, "true or false", n);
                return n.booleanValue();
            });
        }

        OptionalInt integer(String field) {
            Optional<JsonNode> n = node(field);
            if (n.isEmpty()) return OptionalInt.empty();
            if (!n.get().isIntegralNumber() || !n.get().canConvertToInt()) throw wrongType(field, "an integer", n.get());
            return OptionalInt.of(n.get().intValue());
        }

        int required(String field) {
            OptionalInt value = integer(field);
            if (value.isEmpty()) throw invalid(field, "is missing");
            return value.getAsInt();
        }

        OptionalDouble number(String field) {
            Optional<JsonNode> n = node(field);
            if (n.isEmpty()) return OptionalDouble.empty();
            if (!n.get().isNumber()) throw wrongType(field, "a number", n.get());
            return OptionalDouble.of(n.get().doubleValue());
        }

        /** Three per-channel numbers, or one for all three. */
        Optional<double[]> channels(String field) {
            return node(field).map(n -> {
                if (n.isNumber()) return new double[]{n.doubleValue(), n.doubleValue(), n.doubleValue()};
                if (!n.isArray() || n.size() != 3) throw wrongType(field, "a number or a list of 3 numbers", n);
                double[] values = new double[3];
                for (int c = 0; c < 3; c++) {
                    if (!n.get(c).isNumber()) throw wrongType(field, "a number or a list of 3 numbers", n);
                    values[c] = n.get(c).doubleValue();
                }
                return values;
            });
        }

        Fields object(String field) {
            return new Fields(json.get(field), source, path + field + ".");
        }

        ConfigException invalid(String field, String problem) {
            return ClipImageProcessor.invalid(source, path + field, problem);
        }

        private ConfigException wrongType(String field, String expected, JsonNode got) {
            return invalid(field, "must be " + expected + ", got " + got);
        }
    }

    /**
     * The values of a {@link ClipImageProcessor}, named after
     * {@value ClipImageProcessor#CONFIG_FILE}'s fields and starting from CLIP's
     * {@linkplain ClipImageProcessor#defaults() defaults}.
     */
    public static final class Builder {

        private boolean doResize = true;
        private boolean byShortestEdge = true;
        private int shortestEdge = 224;
        private int resizeHeight;
        private int resizeWidth;
        private int resample = BICUBIC;
        private boolean doCenterCrop = true;
        private int cropHeight = 224;
        private int cropWidth = 224;
        private boolean doRescale = true;
        private double rescaleFactor = 1 / 255.0;
        private boolean doNormalize = true;
        private double[] imageMean = CLIP_MEAN.clone();
        private double[] imageStd = CLIP_STD.clone();

        private Builder() {
        }

        /** Whether to resize ({@code do_resize}); default true. */
        public Builder doResize(boolean doResize) {
            this.doResize = doResize;
            return this;
        }

        /** Resize so the shorter side becomes {@code size} ({@code size.shortest_edge}); default 224. */
        public Builder shortestEdge(int size) {
            this.byShortestEdge = true;
            this.shortestEdge = size;
            return this;
        }

        /** Resize to exactly {@code height} × {@code width} ({@code size.height}, {@code size.width}). */
        public Builder size(int height, int width) {
            this.byShortestEdge = false;
            this.resizeHeight = height;
            this.resizeWidth = width;
            return this;
        }

        /**
         * Pillow's filter ({@code resample}): {@link ClipImageProcessor#BICUBIC} (the default) or
         * {@link ClipImageProcessor#BILINEAR}.
         */
        public Builder resample(int resample) {
            this.resample = resample;
            return this;
        }

        /** Whether to center-crop ({@code do_center_crop}); default true. */
        public Builder doCenterCrop(boolean doCenterCrop) {
            this.doCenterCrop = doCenterCrop;
            return this;
        }

        /** The crop ({@code crop_size}); default 224 × 224. */
        public Builder cropSize(int height, int width) {
            this.cropHeight = height;
            this.cropWidth = width;
            return this;
        }

        /** Whether to multiply by the rescale factor ({@code do_rescale}); default true. */
        public Builder doRescale(boolean doRescale) {
            this.doRescale = doRescale;
            return this;
        }

        /** The rescale factor ({@code rescale_factor}); default 1/255. */
        public Builder rescaleFactor(double rescaleFactor) {
            this.rescaleFactor = rescaleFactor;
            return this;
        }

        /** Whether to normalize ({@code do_normalize}); default true. */
        public Builder doNormalize(boolean doNormalize) {
            this.doNormalize = doNormalize;
            return this;
        }

        /** The per-channel mean, red, green, blue ({@code image_mean}); default CLIP's. */
        public Builder imageMean(double... mean) {
            this.imageMean = mean == null ? null : mean.clone();
            return this;
        }

        /** The per-channel standard deviation, red, green, blue ({@code image_std}); default CLIP's. */
        public Builder imageStd(double... std) {
            this.imageStd = std == null ? null : std.clone();
            return this;
        }

        /**
         * The processor.
         *
         * @throws ConfigException if a size is not positive, the filter is neither bicubic nor
         *                         bilinear, or the mean or std does not hold 3 finite numbers
         *                         (std non-zero)
         */
        public ClipImageProcessor build() {
            return build("ClipImageProcessor");
        }

        private ClipImageProcessor build(String source) {
            return new ClipImageProcessor(this, source);
        }
    }
}
