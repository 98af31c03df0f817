package dev.jvllm.models;

import dev.jvllm.weights.BitsAndBytesCheckpoint;
import dev.jvllm.weights.Checkpoint;
import dev.jvllm.weights.DType;
import dev.jvllm.weights.SafetensorsTestWriter;
import dev.jvllm.weights.WeightTensor;
import dev.jvllm.weights.WeightValues;
import dev.jvllm.weights.WeightsException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.api.io.TempDir;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Random;
import java.util.Locale;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * bitsandbytes checkpoints: a golden Llama's projections quantized and serialized here as
 * bitsandbytes saves them (4-bit nf4 and fp4, with and without double quantization; 8-bit), against
 * their float32 twin ({@link QuantizedTwins}).
 */
class BitsAndBytesCheckpointTest {

    private static final float[] NF4 = {-1.0f, -0.6961928f, -0.52507305f, -0.3949175f, -0.28444138f, -0.18477343f, -0.09105004f, 0f,
            0.0795803f, 0.1609302f, 0.2461123f, 0.33791524f, 0.44070983f, 0.562617f, 0.72295684f, 1.0f};
    private static final float[] FP4 = {0f, 0.0625f / 12, 8f / 12, 1f, 4f / 12, 6f / 12, 2f / 12, 3f / 12,
            -0f, -0.0625f / 12, -8f / 12, -1f, -4f / 12, -6f / 12, -2f / 12, -3f / 12};
    private static final int BLOCK = 64;
    private static final int NESTED_BLOCK = 16;

    @TempDir
    Path work;

    @Test
    void fourBitWeightsAnswerAsTheirFloat32Twin() throws Exception {
        assertFourBitAnswers(work, "cpu");
    }

    /** nf4, nf4 double-quantized and fp4 projections in turn against the float32 twin on {@code device}. */
    static void assertFourBitAnswers(Path work, String device) throws Exception {
        Path quantized = work.resolve("nf4"), twin = work.resolve("twin");
        int[] index = {0};
        int count = QuantizedTwins.write(quantized, twin, (name, t, w, writer) -> {
            int kind = index[0]++ % 3;  // 0: nf4, 1: nf4 double-quantized, 2: fp4
            return fourBit(writer, name, (int) t.dim(0), (int) t.dim(1), w, kind == 2 ? "fp4" : "nf4", kind == 1);
        }, config -> config.put("quant_method", "bitsandbytes").put("load_in_4bit", true).put("bnb_4bit_quant_type", "nf4")
                .put("bnb_4bit_use_double_quant", true).put("bnb_4bit_compute_dtype", "float32"));
        assertEquals(14, count);
        QuantizedTwins.assertSameGreedyAnswers(quantized, twin, 1e-5, device);
    }

    @Test
    void eightBitWeightsAnswerAsTheirFloat32Twin() throws Exception {
        Path quantized = work.resolve("int8"), twin = work.resolve("twin");
        QuantizedTwins.write(quantized, twin, (name, t, w, writer) -> {
            int rows = (int) t.dim(0), cols = (int) t.dim(1);
            float[] rowMax = new float[rows];
            for (int r = 0; r < rows; r++) {
                for (int c = 0; c < cols; c++) rowMax[r] = Math.max(rowMax[r], Math.abs(w[r * cols + c]));
            }
            byte[] q = new byte[w.length];
            float[] decoded = new float[w.length];
            for (int r = 0; r < rows; r++) {
                float scale = rowMax[r] / 127f;
                for (int c = 0; c < cols; c++) {
                    q[r * cols + c] = (byte) Math.round(w[r * cols + c] / scale);
                    decoded[r * cols + c] = q[r * cols + c] * scale;
                }
            }
            String prefix = name.substring(0, name.length() - ".weight".length());
            writer.add(name, DType.I8, t.shape(), q);
            writer.add(prefix + ".SCB", DType.F32, new long[]{rows}, QuantizedTwins.f32(rowMax));
            writer.add(prefix + ".weight_format", DType.U8, new long[0], new byte[]{0});
            return decoded;
        }, config -> config.put("quant_method", "bitsandbytes").put("load_in_8bit", true));
        QuantizedTwins.assertSameGreedyAnswers(quantized, twin, 1e-5);
    }

    @Test
    void theEvenElementIsTheHighNibble() throws Exception {
        Path model = Files.createDirectories(work.resolve("nibbles"));
        float[] identity = new float[16];
        for (int i = 0; i < 16; i++) identity[i] = i;
        new SafetensorsTestWriter().add("m.weight", DType.U8, new long[]{2, 1}, new byte[]{(byte) 0x1f, (byte) 0x70})
                .add("m.weight.absmax", DType.F32, new long[]{1}, QuantizedTwins.f32(new float[]{0.5f}))
                .add("m.weight.quant_map", DType.F32, new long[]{16}, QuantizedTwins.f32(identity))
                .add("m.weight.quant_state.bitsandbytes__nf4", DType.U8, new long[]{0}, new byte[0])
                .write(model.resolve("model.safetensors"));
        // An empty state is refused by name; a real one decodes [1, 15, 7, 0] × 0.5 as [2, 2].
        try (Checkpoint checkpoint = new BitsAndBytesCheckpoint(Checkpoint.open(model), DType.F32)) {
            var e = assertThrows(WeightsException.class, () -> checkpoint.get("m.weight"));
            assertTrue(e.getMessage().contains("'m.weight.quant_state.bitsandbytes__nf4'"), e.getMessage());
        }
        byte[] state = "{\"quant_type\": \"nf4\", \"blocksize\": 64, \"dtype\": \"float32\", \"shape\": [2, 2]}".getBytes(StandardCharsets.UTF_8);
        Files.delete(model.resolve("model.safetensors"));
        new SafetensorsTestWriter().add("m.weight", DType.U8, new long[]{2, 1}, new byte[]{(byte) 0x1f, (byte) 0x70})
                .add("m.weight.absmax", DType.F32, new long[]{1}, QuantizedTwins.f32(new float[]{0.5f}))
                .add("m.weight.quant_map", DType.F32, new long[]{16}, QuantizedTwins.f32(identity))
                .add("m.weight.quant_state.bitsandbytes__nf4", DType.U8, new long[]{state.length}, state)
                .write(model.resolve("model.safetensors"));
        try (Checkpoint checkpoint = new BitsAndBytesCheckpoint(Checkpoint.open(model), DType.F32)) {
            WeightTensor weight = checkpoint.get("m.weight");
            assertArrayEquals(new long[]{2, 2}, weight.shape());
            assertArrayEquals(new float[]{0.5f, 7.5f, 3.5f, 0f}, WeightValues.floats(weight));
            assertTrue(checkpoint.names().contains("m.weight"));
            assertFalse(checkpoint.names().contains("m.weight.absmax"));
        }
    }

    /**
     * Decoded to bfloat16 or float16, each value is the float32 decode rounded to nearest even: rows
     * whose blocks start mid-row (40 inputs in blocks of 64), an odd number of elements, rows over
     * several tasks of 64.
     */
    @ParameterizedTest
    @CsvSource({"BF16, 7, 40, 64", "F16, 7, 40, 64", "BF16, 130, 128, 64", "F16, 70, 33, 16"})
    void sixteenBitDecodesAreTheFloat32DecodeRounded(DType type, int rows, int cols, int blockSize) throws Exception {
        long elements = (long) rows * cols;
        int blocks = (int) ((elements + blockSize - 1) / blockSize);
        Random random = new Random(cols);
        byte[] packed = new byte[(int) ((elements + 1) / 2)];
        random.nextBytes(packed);
        float[] absmax = new float[blocks], quantMap = new float[16];
        for (int b = 0; b < blocks; b++) absmax[b] = 0.01f + random.nextFloat();
        for (int q = 0; q < 16; q++) quantMap[q] = random.nextFloat() * 2 - 1;
        byte[] state = ("{\"quant_type\": \"nf4\", \"blocksize\": " + blockSize + ", \"dtype\": \"float32\", \"shape\": [" + rows + ", "
                + cols + "]}").getBytes(StandardCharsets.UTF_8);
        Path model = Files.createDirectories(work.resolve("sixteen"));
        new SafetensorsTestWriter().add("m.weight", DType.U8, new long[]{packed.length, 1}, packed)
                .add("m.weight.absmax", DType.F32, new long[]{blocks}, QuantizedTwins.f32(absmax))
                .add("m.weight.quant_map", DType.F32, new long[]{16}, QuantizedTwins.f32(quantMap))
                .add("m.weight.quant_state.bitsandbytes__nf4", DType.U8, new long[]{state.length}, state)
                .write(model.resolve("model.safetensors"));
        try (Checkpoint wide = new BitsAndBytesCheckpoint(Checkpoint.open(model), DType.F32);
             Checkpoint narrow = new BitsAndBytesCheckpoint(Checkpoint.open(model), type)) {
            float[] exact = WeightValues.floats(wide.get("m.weight"));
            for (int e = 0; e < elements; e++) {
                int b = packed[e / 2] & 0xff;
                assertEquals(quantMap[e % 2 == 0 ? b >>> 4 : b & 0xf] * absmax[e / blockSize], exact[e], "float32 element " + e);
            }
            WeightTensor halves = narrow.get("m.weight");
            for (int e = 0; e < elements; e++) {
                int bits = Float.floatToRawIntBits(exact[e]);
                short expected = type == DType.BF16 ? (short) ((bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16) : Float.floatToFloat16(exact[e]);
                assertEquals(expected, halves.data().getAtIndex(java.lang.foreign.ValueLayout.JAVA_SHORT_UNALIGNED, e), "element " + e);
            }
        }
    }

    @Test
    void inconsistentTensorsAreRefusedNamingThem() throws Exception {
        Path model = Files.createDirectories(work.resolve("bad"));
        byte[] state = "{\"quant_type\": \"nf4\", \"blocksize\": 64, \"dtype\": \"float32\", \"shape\": [8, 16]}".getBytes(StandardCharsets.UTF_8);
        new SafetensorsTestWriter()
                .add("a.weight", DType.U8, new long[]{63, 1}, new byte[63])            // 8 × 16 needs 64 bytes
                .add("a.weight.absmax", DType.F32, new long[]{2}, new byte[8])
                .add("a.weight.quant_map", DType.F32, new long[]{16}, new byte[64])
                .add("a.weight.quant_state.bitsandbytes__nf4", DType.U8, new long[]{state.length}, state)
                .add("b.weight", DType.U8, new long[]{64, 1}, new byte[64])
                .add("b.weight.absmax", DType.F32, new long[]{3}, new byte[12])          // 128 elements: 2 blocks
                .add("b.weight.quant_map", DType.F32, new long[]{16}, new byte[64])
                .add("b.weight.quant_state.bitsandbytes__nf4", DType.U8, new long[]{state.length}, state)
                .add("c.weight", DType.I8, new long[]{4, 4}, new byte[16])
                .add("c.SCB", DType.F32, new long[]{3}, new byte[12])                    // 4 rows
                .write(model.resolve("model.safetensors"));
        try (Checkpoint checkpoint = new BitsAndBytesCheckpoint(Checkpoint.open(model), DType.BF16)) {
            var bytes = assertThrows(WeightsException.class, () -> checkpoint.get("a.weight"));
            assertTrue(bytes.getMessage().contains("'a.weight' holds 63 bytes") && bytes.getMessage().contains("needs 64"), bytes.getMessage());
            var blocks = assertThrows(WeightsException.class, () -> checkpoint.get("b.weight"));
            assertTrue(blocks.getMessage().contains("'b.weight.absmax' holds 3"), blocks.getMessage());
            var rows = assertThrows(WeightsException.class, () -> checkpoint.get("c.weight"));
            assertTrue(rows.getMessage().contains("'c.SCB' holds 3") && rows.getMessage().contains("4 rows"), rows.getMessage());
        }
    }

    /**
     * Writes {@code name} as bitsandbytes' 4-bit weight of {@code type} (blocks of 64 flattened
     * elements scaled by their maximum; with {@code nested}, those maxima less their mean as bytes of
     * a 256-value map scaled per 16 blocks) and returns the values it decodes to.
     */
    private static float[] fourBit(SafetensorsTestWriter writer, String name, int rows, int cols, float[] w, String type, boolean nested) {
        float[] map = type.equals("nf4") ? NF4 : FP4;
        int blocks = (w.length + BLOCK - 1) / BLOCK;
        float[] blockMax = new float[blocks];
        for (int i = 0; i < w.length; i++) blockMax[i / BLOCK] = Math.max(blockMax[i / BLOCK], Math.abs(w[i]));
        StringBuilder state = new StringBuilder(String.format(Locale.ROOT,
                "{\"quant_type\": \"%s\", \"blocksize\": %d, \"dtype\": \"float32\", \"shape\": [%d, %d]", type, BLOCK, rows, cols));
        if (nested) {
            float offset = 0;
            for (float m : blockMax) offset += m / blocks;
            float[] code = new float[256];
            for (int i = 0; i < 256; i++) code[i] = (i - 127.5f) / 127.5f;
            int groups = (blocks + NESTED_BLOCK - 1) / NESTED_BLOCK;
            float[] nestedMax = new float[groups];
            for (int b = 0; b < blocks; b++) nestedMax[b / NESTED_BLOCK] = Math.max(nestedMax[b / NESTED_BLOCK], Math.abs(blockMax[b] - offset));
            byte[] stored = new byte[blocks];
            for (int b = 0; b < blocks; b++) {
                float scale = nestedMax[b / NESTED_BLOCK];
                stored[b] = (byte) nearest(code, scale == 0 ? 0 : (blockMax[b] - offset) / scale);
                blockMax[b] = code[stored[b] & 0xff] * scale + offset;  // as it decodes
            }
            writer.add(name + ".absmax", DType.U8, new long[]{blocks}, stored);
            writer.add(name + ".nested_absmax", DType.F32, new long[]{groups}, QuantizedTwins.f32(nestedMax));
            writer.add(name + ".nested_quant_map", DType.F32, new long[]{256}, QuantizedTwins.f32(code));
            state.append(String.format(Locale.ROOT, ", \"nested_blocksize\": %d, \"nested_offset\": %s, \"nested_dtype\": \"float32\"",
                    NESTED_BLOCK, Float.toString(offset)));
        } else {
            writer.add(name + ".absmax", DType.F32, new long[]{blocks}, QuantizedTwins.f32(blockMax));
        }
        byte[] packed = new byte[(w.length + 1) / 2];
        float[] decoded = new float[w.length];
        for (int i = 0; i < w.length; i++) {
            float scale = blockMax[i / BLOCK];
            int nibble = nearest(map, scale == 0 ? 0 : w[i] / scale);
            packed[i / 2] |= (byte) (i % 2 == 0 ? nibble << 4 : nibble);
            decoded[i] = map[nibble] * scale;
        }
        writer.add(name, DType.U8, new long[]{packed.length, 1}, packed);
        writer.add(name + ".quant_map", DType.F32, new long[]{16}, QuantizedTwins.f32(map));
        byte[] json = state.append('}').toString().getBytes(StandardCharsets.UTF_8);
        writer.add(name + ".quant_state.bitsandbytes__" + type, DType.U8, new long[]{json.length}, json);
        return decoded;
    }

    private static int nearest(float[] map, float v) {
        int best = 0;
        for (int i = 1; i < map.length; i++) {
            if (Math.abs(map[i] - v) < Math.abs(map[best] - v)) best = i;
        }
        return best;
    }
}
