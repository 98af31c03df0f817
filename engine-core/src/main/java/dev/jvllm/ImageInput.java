package dev.jvllm;

import javax.imageio.ImageIO;
import javax.imageio.ImageReader;
import javax.imageio.stream.FileImageInputStream;
import javax.imageio.stream.ImageInputStream;
import javax.imageio.stream.MemoryCacheImageInputStream;
import java.awt.color.ColorSpace;
import java.awt.image.BufferedImage;
import java.awt.image.ColorModel;
import java.awt.image.ComponentColorModel;
import java.awt.image.DataBuffer;
import java.awt.image.IndexColorModel;
import java.awt.image.Raster;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.Iterator;
import java.util.Locale;
import java.util.Set;

/**
 * An image given with a prompt to a vision-language model, held as 8-bit RGB. Immutable and
 * safe to share between threads.
 *
 * <p>Decoded images become RGB as Pillow's {@code convert("RGB")} makes them: alpha is dropped
 * without compositing, grayscale becomes R = G = B and palettes are expanded; the samples are
 * taken as stored, without colour management. Images come from untrusted clients, so every
 * problem with one (unrecognized bytes, a corrupt file, more than {@link #MAX_PIXELS} pixels) is
 * an {@link InvalidRequestException} on field {@code "image"}; the size is checked from the
 * file's header before any pixel is decoded.
 */
public final class ImageInput {

    /** The most pixels an image may have: 64 megapixels (2<sup>26</sup>). */
    public static final long MAX_PIXELS = 64L << 20;

    private static final String FIELD = "image";
    private static final Set<String> FORMATS = Set.of("png", "jpeg", "bmp", "gif");

    private final int width;
    private final int height;
    private final byte[] rgb;
    private volatile String contentHash;

    private ImageInput(int width, int height, byte[] rgb) {
        this.width = width;
        this.height = height;
        this.rgb = rgb;
    }

    /**
     * Reads and decodes an image file (PNG, JPEG, BMP or GIF; the first frame of an animation).
     *
     * @throws InvalidRequestException if the file cannot be read, is no such image, is corrupt
     *                                 or has more than {@link #MAX_PIXELS} pixels
     */
    public static ImageInput read(Path file) {
        if (file == null) throw invalid("no image file given");
        if (!Files.isRegularFile(file) || !Files.isReadable(file)) {
            throw invalid("image file " + file + " does not exist or cannot be read");
        }
        try (ImageInputStream in = new FileImageInputStream(file.toFile())) {
            return decode(in, "image file " + file);
        } catch (IOException e) {
            throw invalid("image file " + file + " cannot be read: " + e.getMessage(), e);
        }
    }

    /**
     * Decodes an encoded image (PNG, JPEG, BMP or GIF; the first frame of an animation).
     *
     * @throws InvalidRequestException if the bytes are no such image, are corrupt or describe
     *                                 more than {@link #MAX_PIXELS} pixels
     */
    public static ImageInput decode(byte[] encoded) {
        if (encoded == null || encoded.length == 0) throw invalid("the image is empty");
        try (ImageInputStream in = new MemoryCacheImageInputStream(new ByteArrayInputStream(encoded))) {
            return decode(in, "the image");
        } catch (IOException e) {
            throw invalid("the image cannot be read: " + e.getMessage(), e);
        }
    }

    /**
     * The pixels of a decoded image, converted to RGB.
     *
     * @throws InvalidRequestException if it has more than {@link #MAX_PIXELS} pixels
     */
    public static ImageInput of(BufferedImage image) {
        if (image == null) throw invalid("no image given");
        int width = image.getWidth(), height = image.getHeight();
        checkSize(width, height, "the image");
        return new ImageInput(width, height, toRgb(image));
    }

    /**
     * An image from its pixels, row-major, 3 bytes (red, green, blue) a pixel; the array is copied.
     *
     * @throws InvalidRequestException if a side is below 1, there are more than {@link #MAX_PIXELS}
     *                                 pixels or the array's length is not {@code width * height * 3}
     */
    public static ImageInput rgb(int width, int height, byte[] interleavedRgb) {
        checkSize(width, height, "the image");
        if (interleavedRgb == null) throw invalid("no RGB bytes given");
        long expected = 3L * width * height;
        if (interleavedRgb.length != expected) {
            throw invalid("a " + width + "x" + height + " RGB image needs " + expected + " bytes, got " + interleavedRgb.length);
        }
        return new ImageInput(width, height, interleavedRgb.clone());
    }

    /** The width in pixels. */
    public int width() {
        return width;
    }

    /** The height in pixels. */
    public int height() {
        return height;
    }

    /** A copy of the pixels: row-major, 3 bytes (red, green, blue) a pixel. */
    public byte[] rgb() {
        return rgb.clone();
    }

    /**
     * A read-only view of the pixels, without copying: row-major, 3 bytes (red, green, blue) a
     * pixel, so channel {@code c} of pixel ({@code x}, {@code y}) is at {@code (y * width + x) * 3 + c}.
     */
    public ByteBuffer asReadOnlyBuffer() {
        return ByteBuffer.wrap(rgb).asReadOnlyBuffer();
    }

    /**
     * Hex SHA-256 of the width, the height (each 4 bytes, big-endian) and the RGB bytes: equal for
     * equal pixels in equal shapes, so it identifies the image in the prefix cache.
     */
    public String contentHash() {
        String hash = contentHash;
        if (hash == null) {
            try {
                MessageDigest sha = MessageDigest.getInstance("SHA-256");
                sha.update(ByteBuffer.allocate(8).putInt(width).putInt(height).array());
                sha.update(rgb);
                hash = HexFormat.of().formatHex(sha.digest());
            } catch (NoSuchAlgorithmException e) {
                throw new IllegalStateException("SHA-256 is unavailable", e);
            }
            contentHash = hash;
        }
        return hash;
    }

    /** Whether {@code other} is an image of the same size with the same pixels. */
    @Override
    public boolean equals(Object other) {
        return other instanceof ImageInput o && o.width == width && o.height == height && Arrays.equals(o.rgb, rgb);
    }

    /** A hash of the size and pixels, consistent with {@link #equals}. */
    @Override
    public int hashCode() {
        return contentHash().hashCode();
    }

    /** The size, for logs: {@code ImageInput[WIDTHxHEIGHT]}. */
    @Override
    public String toString() {
        return "ImageInput[" + width + "x" + height + "]";
    }

    private static ImageInput decode(ImageInputStream in, String what) throws IOException {
        ImageReader reader = reader(in, what);
        try {
            reader.setInput(in, true, true);
            int width, height;
            try {
                width = reader.getWidth(0);
                height = reader.getHeight(0);
            } catch (IOException | RuntimeException e) {
                throw invalid(what + " has a corrupt " + format(reader) + " header: " + e.getMessage(), e);
            }
            checkSize(width, height, what);
            BufferedImage image;
            try {
                image = reader.read(0, reader.getDefaultReadParam());
            } catch (IOException | RuntimeException e) {
                throw invalid(what + " is a corrupt " + format(reader) + " image: " + e.getMessage(), e);
            }
            return of(image);
        } finally {
            reader.dispose();
        }
    }

    /** The first reader of an accepted format that recognizes the stream. */
    private static ImageReader reader(ImageInputStream in, String what) throws IOException {
        Iterator<ImageReader> readers;
        try {
            readers = ImageIO.getImageReaders(in);
        } catch (RuntimeException e) {
            throw invalid(what + " is not a PNG, JPEG, BMP or GIF image", e);
        }
        while (readers.hasNext()) {
            ImageReader reader = readers.next();
            if (FORMATS.contains(format(reader))) {
                return reader;
            }
            reader.dispose();
        }
        throw invalid(what + " is not a PNG, JPEG, BMP or GIF image");
    }

    private static String format(ImageReader reader) {
        try {
            return reader.getFormatName().toLowerCase(Locale.ROOT);
        } catch (IOException e) {
            return "unknown";
        }
    }

    private static void checkSize(int width, int height, String what) {
        if (width < 1 || height < 1) {
            throw invalid(what + " is " + width + "x" + height + " pixels; both sides must be at least 1");
        }
        if ((long) width * height > MAX_PIXELS) {
            throw invalid(what + " is " + width + "x" + height + " pixels, more than the " + MAX_PIXELS
                    + " (64 megapixels) allowed");
        }
    }

    /**
     * RGB bytes of any image: gray, RGB and palette samples as stored (as Pillow reads them), other
     * colour models through Java's conversion to sRGB; alpha is dropped.
     */
    private static byte[] toRgb(BufferedImage image) {
        int width = image.getWidth(), height = image.getHeight();
        byte[] out = new byte[3 * width * height];
        ColorModel cm = image.getColorModel();
        Raster raster = image.getRaster();
        int csType = cm.getColorSpace().getType();
        boolean integral = switch (raster.getTransferType()) {
            case DataBuffer.TYPE_BYTE, DataBuffer.TYPE_USHORT, DataBuffer.TYPE_SHORT, DataBuffer.TYPE_INT -> true;
            default -> false;
        };
        int minX = raster.getMinX(), minY = raster.getMinY();
        if (cm instanceof IndexColorModel icm && raster.getNumBands() == 1) {
            int size = icm.getMapSize();
            byte[] r = new byte[size], g = new byte[size], b = new byte[size];
            icm.getReds(r);
            icm.getGreens(g);
            icm.getBlues(b);
            int[] row = new int[width];
            for (int y = 0, o = 0; y < height; y++) {
                raster.getSamples(minX, minY + y, width, 1, 0, row);
                for (int x = 0; x < width; x++, o += 3) {
                    int i = Math.min(row[x], size - 1);
                    out[o] = r[i];
                    out[o + 1] = g[i];
                    out[o + 2] = b[i];
                }
            }
        } else if (cm instanceof ComponentColorModel && integral && !cm.isAlphaPremultiplied()
                && (csType == ColorSpace.TYPE_GRAY || csType == ColorSpace.TYPE_RGB)
                && raster.getNumBands() == cm.getNumComponents()) {
            int colors = csType == ColorSpace.TYPE_GRAY ? 1 : 3;
            int bands = raster.getNumBands();
            int[] bits = new int[colors];
            for (int c = 0; c < colors; c++) bits[c] = cm.getComponentSize(c);
            int[] row = new int[width * bands];
            for (int y = 0, o = 0; y < height; y++) {
                raster.getPixels(minX, minY + y, width, 1, row);
                for (int x = 0; x < width; x++, o += 3) {
                    int p = x * bands;
                    for (int c = 0; c < 3; c++) {
                        int band = colors == 1 ? 0 : c;
                        out[o + c] = (byte) to8Bits(row[p + band], bits[band]);
                    }
                }
            }
        } else {
            int[] row = new int[width];
            for (int y = 0, o = 0; y < height; y++) {
                image.getRGB(0, y, width, 1, row, 0, width);
                for (int x = 0; x < width; x++, o += 3) {
                    int argb = row[x];
                    out[o] = (byte) (argb >> 16);
                    out[o + 1] = (byte) (argb >> 8);
                    out[o + 2] = (byte) argb;
                }
            }
        }
        return out;
    }

    /** A sample of {@code bits} bits as 8 bits: wider ones keep their high byte, narrower ones scale. */
    private static int to8Bits(int sample, int bits) {
        if (bits == 8) return sample & 0xFF;
        if (bits > 8) return (sample >>> (bits - 8)) & 0xFF;
        int max = (1 << bits) - 1;
        return (Math.min(sample, max) * 255 + max / 2) / max;
    }

    private static InvalidRequestException invalid(String message) {
        return new InvalidRequestException(FIELD, message);
    }

    private static InvalidRequestException invalid(String message, Throwable cause) {
        InvalidRequestException e = invalid(message);
        e.initCause(cause);
        return e;
    }
}
