package dev.jvllm.weights;

import org.junit.jupiter.api.Named;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.stream.Stream;

import static dev.jvllm.MessageAssertions.assertThrowsNaming;

/** A malformed file is refused with a {@link WeightsException} naming the file and, where one is at fault, the tensor. */
class SafetensorsValidationTest {

    @TempDir
    Path dir;

    private Path file() {
        return dir.resolve("model.safetensors");
    }

    private void assertRefused(String... fragments) {
        String[] expected = Stream.concat(Stream.of(file().toString()), Stream.of(fragments)).toArray(String[]::new);
        assertThrowsNaming(WeightsException.class, () -> Checkpoint.open(dir).close(), expected);
    }

    @Test
    void fileShorterThanTheLengthPrefix() throws Exception {
        Files.write(file(), new byte[] {1, 0, 0, 0, 0});
        assertRefused("too short");
    }

    @Test
    void headerLengthBeyondTheEndOfTheFileFailsWithoutAllocating() {
        SafetensorsTestWriter.writeRaw(file(), 1L << 62, "{}".getBytes());
        assertRefused("header length " + (1L << 62));
    }

    @Test
    void headerLengthWithTheTopBitSet() {
        SafetensorsTestWriter.writeRaw(file(), -1L, "{}".getBytes());
        assertRefused("header length 18446744073709551615");
    }

    @Test
    void headerLengthOverTheLimitEvenWhenTheFileIsThatLarge() throws Exception {
        long headerLength = SafetensorsFile.MAX_HEADER_BYTES + 1;
        SafetensorsTestWriter.writeRaw(file(), headerLength, new byte[0]);
        try (RandomAccessFile sparse = new RandomAccessFile(file().toFile(), "rw")) {
            sparse.setLength(8 + headerLength);
        }
        assertRefused("exceeds the limit");
    }

    @Test
    void headerThatIsNotUtf8() {
        SafetensorsTestWriter.writeRaw(file(), new byte[] {'{', '"', (byte) 0xFF, '"', ':', '1', '}'}, new byte[0]);
        assertRefused("UTF-8");
    }

    @ParameterizedTest
    @MethodSource("malformedHeaders")
    void malformedHeaderIsRefused(String header, int dataBytes, String expectedInMessage) {
        SafetensorsTestWriter.writeRaw(file(), header, new byte[dataBytes]);
        assertRefused(expectedInMessage);
    }

    static Stream<Arguments> malformedHeaders() {
        return Stream.of(
                refused("not JSON", "{\"w\": ", 0, "not valid JSON"),
                refused("empty header", "", 0, "JSON object"),
                refused("an array", "[]", 0, "JSON object"),
                refused("content after the object", "{} {}", 0, "not valid JSON"),
                refused("duplicate tensor name", """
                        {"w": {"dtype": "I8", "shape": [1], "data_offsets": [0, 1]},
                         "w": {"dtype": "I8", "shape": [1], "data_offsets": [1, 2]}}""", 2, "Duplicate field 'w'"),
                refused("duplicate key in an entry", """
                        {"w": {"dtype": "I8", "dtype": "F32", "shape": [1], "data_offsets": [0, 1]}}""", 1, "/w/dtype"),
                refused("entry not an object", "{\"w\": 3}", 0, "'w'"),
                refused("missing dtype", entry("\"shape\": [1], \"data_offsets\": [0, 4]"), 4, "'w': 'dtype'"),
                refused("missing shape", entry("\"dtype\": \"F32\", \"data_offsets\": [0, 4]"), 4, "'w': 'shape'"),
                refused("missing data_offsets", entry("\"dtype\": \"F32\", \"shape\": [1]"), 4, "'w': 'data_offsets'"),
                refused("dtype not a string", tensor("4", "[1]", "[0, 4]"), 4, "'w': 'dtype'"),
                refused("shape not an array", tensor("\"F32\"", "\"1\"", "[0, 4]"), 4, "'w': 'shape'"),
                refused("fractional dimension", tensor("\"F32\"", "[1.5]", "[0, 4]"), 4, "'w': 'shape'"),
                refused("offset as a string", tensor("\"F32\"", "[1]", "[0, \"4\"]"), 4, "'w': 'data_offsets'"),
                refused("three offsets", tensor("\"F32\"", "[1]", "[0, 2, 4]"), 4, "'w': 'data_offsets'"),
                refused("end before begin", tensor("\"F32\"", "[1]", "[4, 0]"), 4, "'w': 'data_offsets'"),
                refused("unknown dtype", tensor("\"F4\"", "[1]", "[0, 1]"), 1, "'w': unknown dtype 'F4'"),
                refused("dtype in the wrong case", tensor("\"f32\"", "[1]", "[0, 4]"), 4, "unknown dtype 'f32'"),
                refused("negative dimension", tensor("\"F32\"", "[-1]", "[0, 4]"), 4, "'w': 'shape' must not be negative"),
                refused("element count overflows", tensor("\"F32\"", "[4294967296, 4294967296]", "[0, 4]"), 4,
                        "'w': shape [4294967296, 4294967296] of F32 overflows"),
                refused("byte count overflows", tensor("\"F64\"", "[2305843009213693952]", "[0, 8]"), 8,
                        "'w': shape [2305843009213693952] of F64 overflows"),
                refused("huge shape for a small span", tensor("\"F32\"", "[1099511627776]", "[0, 4]"), 4,
                        "'w': shape and dtype need 4398046511104 bytes but data_offsets span 4"),
                refused("shape disagrees with the span", tensor("\"F32\"", "[2]", "[0, 4]"), 4, "'w': shape and dtype"),
                refused("offsets outside the data region", tensor("\"F32\"", "[100]", "[0, 400]"), 4,
                        "'w': data_offsets [0, 400] lie outside the data region of 4 bytes"),
                refused("first tensor not at 0", tensor("\"F32\"", "[1]", "[4, 8]"), 8, "'w' starts at data byte 4"),
                refused("gap between tensors", """
                        {"a": {"dtype": "I8", "shape": [1], "data_offsets": [0, 1]},
                         "b": {"dtype": "I8", "shape": [1], "data_offsets": [2, 3]}}""", 3, "'b' starts at data byte 2"),
                refused("overlapping tensors", """
                        {"a": {"dtype": "I16", "shape": [1], "data_offsets": [0, 2]},
                         "b": {"dtype": "I8", "shape": [1], "data_offsets": [1, 2]}}""", 2, "'b' overlaps tensor 'a'"),
                refused("bytes after the last tensor", tensor("\"F32\"", "[1]", "[0, 4]"), 6, "2 bytes after the last"),
                refused("data without tensors", "{}", 4, "4 bytes after the last"),
                refused("metadata with a number", "{\"__metadata__\": {\"step\": 1}}", 0, "'__metadata__' entry 'step'"),
                refused("metadata not an object", "{\"__metadata__\": \"pt\"}", 0, "'__metadata__'"));
    }

    private static Arguments refused(String name, String header, int dataBytes, String expectedInMessage) {
        return Arguments.of(Named.of(name, header), dataBytes, expectedInMessage);
    }

    private static String entry(String fields) {
        return "{\"w\": {" + fields + "}}";
    }

    private static String tensor(String dtype, String shape, String offsets) {
        return entry("\"dtype\": " + dtype + ", \"shape\": " + shape + ", \"data_offsets\": " + offsets);
    }
}
