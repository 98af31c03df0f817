package dev.jvllm;

import java.awt.image.BufferedImage;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.Arrays;
import java.util.HexFormat;

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
    // javax.imageio and java.awt are used only in ImageDecoding, so that images given as RGB bytes
    // need no java.desktop module (a jlinked runtime without it, say).

    /** The most pixels an image may have: 64 megapixels (2<sup>26</sup>). */
    public static final long MAX_PIXELS = 64L << 20;

    private static final String FIELD = "image";

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
        return ImageDecoding.read(file);
    }

    /**
     * Decodes an encoded image (PNG, JPEG, BMP or GIF; the first frame of an animation).
     *
     * @throws InvalidRequestException if the bytes are no such image, are corrupt or describe
     *                                 more than {@link #MAX_PIXELS} pixels
     */
    public static ImageInput decode(byte[] encoded) {
        if (encoded == null || encoded.length == 0) throw invalid("the image is empty");
        return ImageDecoding.decode(encoded);
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
        return new ImageInput(width, height, ImageDecoding.toRgb(image));
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

    static void checkSize(int width, int height, String what) {
        if (width < 1 || height < 1) {
            throw invalid(what + " is " + width + "x" + height + " pixels; both sides must be at least 1");
        }
        if ((long) width * height > MAX_PIXELS) {
            throw invalid(what + " is " + width + "x" + height + " pixels, more than the " + MAX_PIXELS
                    + " (64 megapixels) allowed");
        }
    }

    static InvalidRequestException invalid(String message) {
        return new InvalidRequestException(FIELD, message);
    }

    static InvalidRequestException invalid(String message, Throwable cause) {
        InvalidRequestException e = invalid(message);
        e.initCause(cause);
        return e;
    }
}
