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
import java.nio.file.Path;
import java.util.Iterator;
import java.util.Locale;
import java.util.Set;

import static dev.jvllm.ImageInput.checkSize;
import static dev.jvllm.ImageInput.invalid;

/** {@link ImageInput}'s decoding of encoded images through javax.imageio (java.desktop). */
final class ImageDecoding {

    private static final Set<String> FORMATS = Set.of("png", "jpeg", "bmp", "gif");

    private ImageDecoding() {
    }

    static ImageInput read(Path file) {
        try (ImageInputStream in = new FileImageInputStream(file.toFile())) {
            return decode(in, "image file " + file);
        } catch (IOException e) {
            throw invalid("image file " + file + " cannot be read: " + e.getMessage(), e);
        }
    }

    static ImageInput decode(byte[] encoded) {
        try (ImageInputStream in = new MemoryCacheImageInputStream(new ByteArrayInputStream(encoded))) {
            return decode(in, "the image");
        } catch (IOException e) {
            throw invalid("the image cannot be read: " + e.getMessage(), e);
        }
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
            return ImageInput.of(image);
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

    /**
     * RGB bytes of any image: gray, RGB and palette samples as stored (as Pillow reads them), other
     * colour models through Java's conversion to sRGB; alpha is dropped.
     */
    static byte[] toRgb(BufferedImage image) {
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

}
