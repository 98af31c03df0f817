package dev.jvllm.models.layers;

import dev.jvllm.spi.Backend;
import dev.jvllm.spi.BackendOptions;
import dev.jvllm.spi.Backends;
import dev.jvllm.weights.Checkpoint;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

class PackedQkvTest {

    private static final int IN = 2;

    @TempDir
    Path dir;

    /** A checkpoint of "qkv.weight" [rows, IN] whose elements are row + column/10, and "qkv.bias" [rows] = row. */
    private Checkpoint fused(int rows) throws IOException {
        String header = "{\"qkv.weight\":{\"dtype\":\"F32\",\"shape\":[" + rows + "," + IN + "],\"data_offsets\":[0,"
                + rows * IN * 4 + "]},\"qkv.bias\":{\"dtype\":\"F32\",\"shape\":[" + rows + "],\"data_offsets\":["
                + rows * IN * 4 + "," + rows * (IN + 1) * 4 + "]}}";
        byte[] h = header.getBytes(StandardCharsets.UTF_8);
        ByteBuffer buf = ByteBuffer.allocate(8 + h.length + rows * (IN + 1) * 4).order(ByteOrder.LITTLE_ENDIAN);
        buf.putLong(h.length).put(h);
        for (int r = 0; r < rows; r++) for (int c = 0; c < IN; c++) buf.putFloat(r + c / 10f);
        for (int r = 0; r < rows; r++) buf.putFloat(r);
        return Checkpoint.openFile(Files.write(dir.resolve("m.safetensors"), buf.array()));
    }

    private static float[] weightOfRows(int... rows) {
        float[] out = new float[rows.length * IN];
        for (int i = 0; i < rows.length; i++) for (int c = 0; c < IN; c++) out[i * IN + c] = rows[i] + c / 10f;
        return out;
    }

    private static float[] biasOfRows(int... rows) {
        float[] out = new float[rows.length];
        for (int i = 0; i < rows.length; i++) out[i] = rows[i];
        return out;
    }

    private static void assertRows(Backend backend, Linear linear, int... rows) {
        assertArrayEquals(weightOfRows(rows), backend.toFloatArray(linear.weight()));
        assertArrayEquals(biasOfRows(rows), backend.toFloatArray(linear.bias()));
    }

    @Test
    void perHeadLayoutIsGatheredIntoQueryKeyAndValueMatrices() throws IOException {
        // 2 heads of 2: rows are [q0 q0 k0 k0 v0 v0 q1 q1 k1 k1 v1 v1].
        try (Checkpoint checkpoint = fused(12); Backend backend = Backends.create("cpu", BackendOptions.defaults())) {
            Linear[] qkv = PackedQkv.perHead(2, 2).load(WeightScope.root(checkpoint, backend), "qkv", IN, true);
            assertRows(backend, qkv[0], 0, 1, 6, 7);
            assertRows(backend, qkv[1], 2, 3, 8, 9);
            assertRows(backend, qkv[2], 4, 5, 10, 11);
        }
    }

    @Test
    void perKvHeadLayoutKeepsEachGroupsQueriesTogether() throws IOException {
        // 2 kv heads of size 1 with 2 queries each: [q q k v q q k v].
        try (Checkpoint checkpoint = fused(8); Backend backend = Backends.create("cpu", BackendOptions.defaults())) {
            Linear[] qkv = PackedQkv.perKvHead(2, 2, 1).load(WeightScope.root(checkpoint, backend), "qkv", IN, true);
            assertRows(backend, qkv[0], 0, 1, 4, 5);
            assertRows(backend, qkv[1], 2, 6);
            assertRows(backend, qkv[2], 3, 7);
        }
    }

    @Test
    void blockLayoutIsSlicedInPlace() throws IOException {
        try (Checkpoint checkpoint = fused(6); Backend backend = Backends.create("cpu", BackendOptions.defaults())) {
            Linear[] qkv = PackedQkv.blocks(4, 1, 1).load(WeightScope.root(checkpoint, backend), "qkv", IN, true);
            assertRows(backend, qkv[0], 0, 1, 2, 3);
            assertRows(backend, qkv[1], 4);
            assertRows(backend, qkv[2], 5);
        }
    }
}
