package dev.jvllm;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import javax.imageio.ImageIO;
import java.awt.image.BufferedImage;
import java.awt.image.IndexColorModel;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.zip.CRC32;
import java.util.zip.Deflater;

import static dev.jvllm.MessageAssertions.assertThrowsNaming;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;

class ImageInputTest {

    @Test
    void pngRoundTripKeepsThePixels() throws IOException {
        BufferedImage image = new BufferedImage(3, 2, BufferedImage.TYPE_INT_RGB);
        int[] colors = {0x000000, 0xFFFFFF, 0x102030, 0xFF0080, 0x7F8081, 0x01FE02};
        for (int i = 0; i < colors.length; i++) image.setRGB(i % 3, i / 3, colors[i]);

        ImageInput decoded = ImageInput.decode(encode(image, "png"));

        assertEquals(3, decoded.width());
        assertEquals(2, decoded.height());
        assertArrayEquals(rgbOf(colors), decoded.rgb());
        assertEquals(decoded.contentHash(), ImageInput.of(image).contentHash());
    }

    @Test
    void alphaIsDroppedWithoutCompositing() throws IOException {
        BufferedImage image = new BufferedImage(2, 1, BufferedImage.TYPE_INT_ARGB);
        image.setRGB(0, 0, 0x000A141E);  // fully transparent
        image.setRGB(1, 0, 0x80C8643C);  // half transparent

        ImageInput decoded = ImageInput.decode(encode(image, "png"));

        assertArrayEquals(bytes(10, 20, 30, 200, 100, 60), decoded.rgb());
    }

    @Test
    void grayscaleBecomesEqualChannelsOfTheStoredValue() throws IOException {
        BufferedImage image = new BufferedImage(3, 1, BufferedImage.TYPE_BYTE_GRAY);
        image.getRaster().setSamples(0, 0, 3, 1, 0, new int[]{0, 100, 255});

        ImageInput decoded = ImageInput.decode(encode(image, "png"));

        assertArrayEquals(bytes(0, 0, 0, 100, 100, 100, 255, 255, 255), decoded.rgb());
    }

    @Test
    void paletteImagesAreExpanded() throws IOException {
        IndexColorModel palette = new IndexColorModel(1, 2, bytes(250, 7), bytes(5, 8), bytes(9, 200));
        BufferedImage image = new BufferedImage(2, 1, BufferedImage.TYPE_BYTE_BINARY, palette);
        image.getRaster().setSamples(0, 0, 2, 1, 0, new int[]{1, 0});

        for (String format : new String[]{"png", "gif", "bmp"}) {
            assertArrayEquals(bytes(7, 8, 200, 250, 5, 9), ImageInput.decode(encode(image, format)).rgb(), format);
        }
    }

    @Test
    void bytesNoReaderRecognizesAreRefused() {
        byte[] garbage = "this is not an image, just some text".getBytes(StandardCharsets.UTF_8);
        InvalidRequestException e = assertThrowsNaming(InvalidRequestException.class, () -> ImageInput.decode(garbage),
                "not a PNG, JPEG, BMP or GIF image");
        assertEquals("image", e.field());
    }

    @Test
    void truncatedImageIsRefusedAsCorrupt() throws IOException {
        BufferedImage image = new BufferedImage(40, 40, BufferedImage.TYPE_INT_RGB);
        byte[] png = encode(image, "png");
        byte[] truncated = java.util.Arrays.copyOf(png, 40);
        InvalidRequestException e = assertThrowsNaming(InvalidRequestException.class, () -> ImageInput.decode(truncated),
                "corrupt");
        assertEquals("image", e.field());
    }

    @Test
    void decompressionBombIsRefusedFromItsHeaderBeforeDecoding() {
        byte[] bomb = pngHeaderClaiming(20000, 20000);

        InvalidRequestException e = assertThrowsNaming(InvalidRequestException.class, () -> ImageInput.decode(bomb),
                "20000x20000", "64 megapixels");
        assertEquals("image", e.field());
    }

    @Test
    void rgbBytesOfTheWrongLengthAreRefused() {
        InvalidRequestException e = assertThrowsNaming(InvalidRequestException.class,
                () -> ImageInput.rgb(2, 2, new byte[11]), "2x2", "12 bytes", "got 11");
        assertEquals("image", e.field());
        assertThrowsNaming(InvalidRequestException.class, () -> ImageInput.rgb(0, 2, new byte[0]), "0x2");
    }

    @Test
    void contentHashFollowsPixelsAndShape() {
        byte[] pixels = new byte[18];
        for (int i = 0; i < pixels.length; i++) pixels[i] = (byte) (i * 13);
        ImageInput twoByThree = ImageInput.rgb(2, 3, pixels);

        assertEquals(twoByThree.contentHash(), ImageInput.rgb(2, 3, pixels.clone()).contentHash());
        assertNotEquals(twoByThree.contentHash(), ImageInput.rgb(3, 2, pixels).contentHash());
        pixels[17]++;
        assertNotEquals(twoByThree.contentHash(), ImageInput.rgb(2, 3, pixels).contentHash());
        assertEquals(64, twoByThree.contentHash().length());
    }

    @Test
    void pixelsAreCopiedInAndOut() {
        byte[] pixels = bytes(1, 2, 3);
        ImageInput image = ImageInput.rgb(1, 1, pixels);
        pixels[0] = 9;
        image.rgb()[1] = 9;

        assertArrayEquals(bytes(1, 2, 3), image.rgb());
        ByteBuffer view = image.asReadOnlyBuffer();
        assertEquals(3, view.remaining());
        assertEquals(3, view.get(2));
    }

    @Test
    void fileIsReadAndAMissingOneIsRefusedNamingIt(@TempDir Path dir) throws IOException {
        BufferedImage image = new BufferedImage(1, 1, BufferedImage.TYPE_INT_RGB);
        image.setRGB(0, 0, 0x336699);
        Path file = dir.resolve("pixel.png");
        Files.write(file, encode(image, "png"));
        assertArrayEquals(bytes(0x33, 0x66, 0x99), ImageInput.read(file).rgb());

        Path missing = dir.resolve("missing.png");
        InvalidRequestException e = assertThrowsNaming(InvalidRequestException.class, () -> ImageInput.read(missing),
                missing.toString());
        assertEquals("image", e.field());
    }

    private static byte[] encode(BufferedImage image, String format) throws IOException {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        if (!ImageIO.write(image, format, out)) throw new IllegalStateException("no " + format + " writer");
        return out.toByteArray();
    }

    /** A valid PNG signature and IHDR for an 8-bit RGB image of that size, then a tiny IDAT and IEND. */
    private static byte[] pngHeaderClaiming(int width, int height) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        out.writeBytes(bytes(0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'));
        chunk(out, "IHDR", ByteBuffer.allocate(13).putInt(width).putInt(height)
                .put((byte) 8).put((byte) 2).put((byte) 0).put((byte) 0).put((byte) 0).array());
        Deflater deflater = new Deflater();
        deflater.setInput(new byte[4]);
        deflater.finish();
        byte[] idat = new byte[64];
        int length = deflater.deflate(idat);
        chunk(out, "IDAT", java.util.Arrays.copyOf(idat, length));
        chunk(out, "IEND", new byte[0]);
        return out.toByteArray();
    }

    private static void chunk(ByteArrayOutputStream out, String type, byte[] data) {
        byte[] typeBytes = type.getBytes(StandardCharsets.US_ASCII);
        CRC32 crc = new CRC32();
        crc.update(typeBytes);
        crc.update(data);
        out.writeBytes(ByteBuffer.allocate(4).putInt(data.length).array());
        out.writeBytes(typeBytes);
        out.writeBytes(data);
        out.writeBytes(ByteBuffer.allocate(4).putInt((int) crc.getValue()).array());
    }

    private static byte[] rgbOf(int[] colors) {
        byte[] out = new byte[colors.length * 3];
        for (int i = 0; i < colors.length; i++) {
            out[3 * i] = (byte) (colors[i] >> 16);
            out[3 * i + 1] = (byte) (colors[i] >> 8);
            out[3 * i + 2] = (byte) colors[i];
        }
        return out;
    }

    private static byte[] bytes(int... values) {
        byte[] out = new byte[values.length];
        for (int i = 0; i < values.length; i++) out[i] = (byte) values[i];
        return out;
    }
}
