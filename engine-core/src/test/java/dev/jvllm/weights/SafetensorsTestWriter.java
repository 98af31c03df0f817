package dev.jvllm.weights;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Writes small safetensors files for tests: valid ones through {@link #add} and {@link #write}, and
 * malformed ones through {@link #writeRaw}. Tensors are laid out back to back in the order added,
 * after a header padded with spaces to a multiple of 8 bytes, as the reference writer does.
 */
public final class SafetensorsTestWriter {

    private static final ObjectMapper JSON = new ObjectMapper();

    private record Entry(DType dtype, long[] shape, byte[] data) {
    }

    private final Map<String, Entry> tensors = new LinkedHashMap<>();
    private final Map<String, String> metadata = new LinkedHashMap<>();

    /** Adds a tensor whose little-endian bytes are given. */
    public SafetensorsTestWriter add(String name, DType dtype, long[] shape, byte[] data) {
        tensors.put(name, new Entry(dtype, shape.clone(), data.clone()));
        return this;
    }

    /** Adds a tensor of {@code values} encoded as {@code dtype} (see {@link #encode}). */
    public SafetensorsTestWriter add(String name, DType dtype, long[] shape, double... values) {
        return add(name, dtype, shape, encode(dtype, values));
    }

    /** Adds an entry to {@code __metadata__}. */
    public SafetensorsTestWriter metadata(String key, String value) {
        metadata.put(key, value);
        return this;
    }

    /** Writes the file, replacing any that exists, and returns it. */
    public Path write(Path file) {
        ObjectNode header = JSON.createObjectNode();
        if (!metadata.isEmpty()) {
            header.set("__metadata__", JSON.valueToTree(metadata));
        }
        long offset = 0;
        ByteArrayOutputStream data = new ByteArrayOutputStream();
        for (Map.Entry<String, Entry> tensor : tensors.entrySet()) {
            Entry e = tensor.getValue();
            ObjectNode info = header.putObject(tensor.getKey());
            info.put("dtype", e.dtype().name());
            info.set("shape", JSON.valueToTree(e.shape()));
            info.putArray("data_offsets").add(offset).add(offset + e.data().length);
            offset += e.data().length;
            data.writeBytes(e.data());
        }
        byte[] headerBytes = header.toString().getBytes(StandardCharsets.UTF_8);
        byte[] padded = Arrays.copyOf(headerBytes, (headerBytes.length + 7) / 8 * 8);
        Arrays.fill(padded, headerBytes.length, padded.length, (byte) ' ');
        writeRaw(file, padded, data.toByteArray());
        return file;
    }

    /** Writes a file with {@code header} as the header text (its UTF-8 length prefixed) followed by {@code data}. */
    public static Path writeRaw(Path file, String header, byte[] data) {
        return writeRaw(file, header.getBytes(StandardCharsets.UTF_8), data);
    }

    /** Writes a file with the given header bytes, their true length prefixed, followed by {@code data}. */
    public static Path writeRaw(Path file, byte[] header, byte[] data) {
        return writeRaw(file, header.length, concat(header, data));
    }

    /** Writes a file that declares a header of {@code declaredHeaderLength} bytes, followed by {@code rest}. */
    public static Path writeRaw(Path file, long declaredHeaderLength, byte[] rest) {
        ByteBuffer bytes = ByteBuffer.allocate(8 + rest.length).order(ByteOrder.LITTLE_ENDIAN);
        bytes.putLong(declaredHeaderLength).put(rest);
        try {
            return Files.write(file, bytes.array());
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** Writes {@code model.safetensors.index.json} with the given tensor-to-file map into {@code directory}. */
    public static Path writeIndex(Path directory, Map<String, String> weightMap) {
        ObjectNode index = JSON.createObjectNode();
        index.putObject("metadata").put("total_size", 0);
        index.set("weight_map", JSON.valueToTree(weightMap));
        try {
            return Files.writeString(directory.resolve("model.safetensors.index.json"), index.toString());
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /**
     * Little-endian bytes of {@code values} as {@code dtype}; BF16 truncates, BOOL and the integer
     * types cast. The 8-bit float types have no encoder here: pass their bytes to {@link #add(String, DType, long[], byte[])}.
     */
    public static byte[] encode(DType dtype, double... values) {
        ByteBuffer out = ByteBuffer.allocate(values.length * dtype.byteSize()).order(ByteOrder.LITTLE_ENDIAN);
        for (double v : values) {
            switch (dtype) {
                case F64 -> out.putDouble(v);
                case F32 -> out.putFloat((float) v);
                case F16 -> out.putShort(Float.floatToFloat16((float) v));
                case BF16 -> out.putShort((short) (Float.floatToRawIntBits((float) v) >>> 16));
                case I64 -> out.putLong((long) v);
                case I32 -> out.putInt((int) v);
                case I16 -> out.putShort((short) v);
                case I8, U8, BOOL -> out.put((byte) v);
                case F8_E4M3, F8_E5M2 -> throw new UnsupportedOperationException("pass the bytes of " + dtype);
            }
        }
        return out.array();
    }

    private static byte[] concat(byte[] a, byte[] b) {
        byte[] all = new byte[a.length + b.length];
        System.arraycopy(a, 0, all, 0, a.length);
        System.arraycopy(b, 0, all, a.length, b.length);
        return all;
    }
}
