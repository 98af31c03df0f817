package dev.jvllm.models;

import dev.jvllm.weights.Checkpoint;
import dev.jvllm.weights.DType;
import dev.jvllm.weights.SafetensorsTestWriter;
import dev.jvllm.weights.WeightTensor;
import dev.jvllm.weights.WeightValues;
import dev.jvllm.weights.WeightsException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * FP8 checkpoints: a golden Llama's projections quantized here to float8 (e4m3) with each of the three
 * scale schemes (one a tensor, one a row, one a block), against the same model whose weights are
 * those float8 values times their scales written as float32. The two must give the same logits: what
 * is checked is the decoding, not the quantization's error.
 */
class Fp8CheckpointTest {

    private static final int[] BLOCK = {8, 16};

    @TempDir
    Path work;

    /** e4m3fn's finite non-negative values, by byte (0x00..0x7e), ascending. */
    private static float e4m3(int b) {
        int exponent = (b >>> 3) & 15, mantissa = b & 7;
        double magnitude = exponent == 0 ? mantissa / 8.0 * Math.pow(2, -6) : (1 + mantissa / 8.0) * Math.pow(2, exponent - 7);
        return (float) ((b & 0x80) != 0 ? -magnitude : magnitude);
    }

    /** The nearest e4m3fn byte to {@code v} (|v| ≤ 448). */
    private static byte encode(float v) {
        int best = 0;
        for (int b = 1; b <= 0x7e; b++) {
            if (Math.abs(e4m3(b) - Math.abs(v)) < Math.abs(e4m3(best) - Math.abs(v))) best = b;
        }
        return (byte) (v < 0 ? best | 0x80 : best);
    }

    @Test
    void theByteTableIsE4m3fn() {
        assertEquals(1.0f, e4m3(0x38));
        assertEquals(448f, e4m3(0x7e));
        assertEquals((float) Math.pow(2, -9), e4m3(0x01));
        assertEquals(-2f, e4m3(0xc0));
    }

    @Test
    void fp8WeightsDecodeToTheirScaledValuesAndTheModelAnswersAsItsFloat32Twin() throws Exception {
        Path fp8 = work.resolve("fp8"), twin = work.resolve("twin");
        int[] schemes = {0};
        int quantized = QuantizedTwins.write(fp8, twin, (name, t, w, writer) -> {
            int rows = (int) t.dim(0), cols = (int) t.dim(1);
            int scheme = schemes[0]++ % 3; // 0: a tensor, 1: a row, 2: a block
            String scaleName = name.replace("weight", scheme == 2 ? "weight_scale_inv" : "weight_scale");
            int blockRows = (rows + BLOCK[0] - 1) / BLOCK[0], blockCols = (cols + BLOCK[1] - 1) / BLOCK[1];
            float[] scales = new float[scheme == 0 ? 1 : scheme == 1 ? rows : blockRows * blockCols];
            for (int r = 0; r < rows; r++) {
                for (int c = 0; c < cols; c++) {
                    int s = scheme == 0 ? 0 : scheme == 1 ? r : (r / BLOCK[0]) * blockCols + c / BLOCK[1];
                    scales[s] = Math.max(scales[s], Math.abs(w[r * cols + c]) / 448f);
                }
            }
            byte[] bytes = new byte[w.length];
            float[] decoded = new float[w.length];
            for (int r = 0; r < rows; r++) {
                for (int c = 0; c < cols; c++) {
                    int i = r * cols + c;
                    float scale = scales[scheme == 0 ? 0 : scheme == 1 ? r : (r / BLOCK[0]) * blockCols + c / BLOCK[1]];
                    bytes[i] = encode(scale == 0 ? 0 : w[i] / scale);
                    decoded[i] = e4m3(bytes[i] & 0xff) * scale;
                }
            }
            writer.add(name, DType.F8_E4M3, t.shape(), bytes);
            long[] scaleShape = scheme == 0 ? new long[0] : scheme == 1 ? new long[]{rows, 1} : new long[]{blockRows, blockCols};
            writer.add(scaleName, DType.F32, scaleShape, QuantizedTwins.f32(scales));
            writer.add(name.replace("weight", "input_scale"), DType.F32, new long[0], QuantizedTwins.f32(new float[]{1f}));
            return decoded;
        }, config -> config.put("quant_method", "fp8").put("activation_scheme", "dynamic")
                .putArray("weight_block_size").add(BLOCK[0]).add(BLOCK[1]));
        assertTrue(quantized >= 6, "every projection of the layers is float8");
        QuantizedTwins.assertSameGreedyAnswers(fp8, twin, 1e-4);
    }

    @Test
    void toBfloat16EachWeightIsItsDecodedValueRoundedToNearestEven() throws Exception {
        Path model = Files.createDirectories(work.resolve("bf16"));
        byte[] bytes = new byte[256];
        for (int b = 0; b < 256; b++) bytes[b] = (byte) (b == 0x7f || b == 0xff ? 0 : b); // no NaN
        float scale = 0.0371f;
        new SafetensorsTestWriter().add("m.weight", DType.F8_E4M3, new long[]{16, 16}, bytes)
                .add("m.weight_scale", DType.F32, new long[]{1}, QuantizedTwins.f32(new float[]{scale}))
                .write(model.resolve("model.safetensors"));
        try (Checkpoint checkpoint = new dev.jvllm.weights.Fp8Checkpoint(Checkpoint.open(model), DType.BF16, null)) {
            WeightTensor decoded = checkpoint.get("m.weight");
            assertEquals(DType.BF16, decoded.dtype());
            float[] values = WeightValues.floats(decoded);
            for (int i = 0; i < 256; i++) {
                float exact = e4m3(bytes[i] & 0xff) * scale;
                float got = values[i];
                assertEquals(roundToBf16(exact), got, 0f, "byte " + i);
            }
        }
    }

    /**
     * To bfloat16 or float16 every scheme (a tensor's scale, a row's, blocks of rows × columns partial
     * at the edges, short and long) gives the float32 decode rounded to nearest even, for every byte
     * of e4m3 and e5m2 (NaN and infinities included) and rows over several tasks.
     */
    @org.junit.jupiter.params.ParameterizedTest
    @org.junit.jupiter.params.provider.CsvSource({"0, BF16, F8_E4M3, 6, 1100, 8, 16", "1, BF16, F8_E4M3, 70, 1100, 8, 16",
            "2, BF16, F8_E4M3, 6, 1100, 8, 16", "0, F16, F8_E5M2, 6, 200, 8, 16", "1, F16, F8_E4M3, 70, 300, 8, 16",
            "2, F16, F8_E5M2, 70, 2100, 2, 1024", "2, BF16, F8_E4M3, 6, 2100, 3, 1024"})
    void sixteenBitDecodesAreTheFloat32DecodeRounded(int scheme, DType type, DType fp8, int rows, int cols, int blockRows,
                                                     int blockColumns) throws Exception {
        int[] block = {blockRows, blockColumns};
        int rowBlocks = (rows + blockRows - 1) / blockRows, columnBlocks = (cols + blockColumns - 1) / blockColumns;
        java.util.Random random = new java.util.Random(scheme * 31L + cols);
        byte[] bytes = new byte[rows * cols];
        random.nextBytes(bytes);
        float[] scales = new float[scheme == 0 ? 1 : scheme == 1 ? rows : rowBlocks * columnBlocks];
        for (int i = 0; i < scales.length; i++) scales[i] = 0.001f + random.nextFloat() / 100;
        Path model = Files.createDirectories(work.resolve("sixteen"));
        long[] scaleShape = scheme == 0 ? new long[0] : scheme == 1 ? new long[]{rows, 1} : new long[]{rowBlocks, columnBlocks};
        new SafetensorsTestWriter().add("m.weight", fp8, new long[]{rows, cols}, bytes)
                .add(scheme == 2 ? "m.weight_scale_inv" : "m.weight_scale", DType.F32, scaleShape, QuantizedTwins.f32(scales))
                .write(model.resolve("model.safetensors"));
        try (Checkpoint wide = new dev.jvllm.weights.Fp8Checkpoint(Checkpoint.open(model), DType.F32, block);
             Checkpoint narrow = new dev.jvllm.weights.Fp8Checkpoint(Checkpoint.open(model), type, block)) {
            float[] exact = WeightValues.floats(wide.get("m.weight"));
            WeightTensor halves = narrow.get("m.weight");
            for (int i = 0; i < exact.length; i++) {
                float x = exact[i];
                short expected;
                if (type == DType.F16) expected = Float.floatToFloat16(x);
                else if (Float.isNaN(x)) expected = (short) 0x7fc0;
                else if (Float.isInfinite(x)) expected = (short) (Float.floatToRawIntBits(x) >>> 16);
                else expected = (short) (Float.floatToRawIntBits(roundToBf16(x)) >>> 16);
                assertEquals(expected, halves.data().getAtIndex(java.lang.foreign.ValueLayout.JAVA_SHORT_UNALIGNED, i), "element " + i);
            }
        }
    }

    /** bfloat16 by round-to-nearest-even, computed independently of the loader: the nearer of the two neighbours. */
    private static float roundToBf16(float v) {
        int bits = Float.floatToRawIntBits(v);
        float down = Float.intBitsToFloat(bits & 0xffff0000), up = Float.intBitsToFloat((bits & 0xffff0000) + 0x10000);
        double toDown = Math.abs((double) v - down), toUp = Math.abs((double) up - v);
        if (toDown != toUp) return toDown < toUp ? down : up;
        return ((bits >>> 16) & 1) == 0 ? down : up;
    }

    @Test
    void aFloat8WeightWithoutItsScaleIsRefusedNamingIt() throws Exception {
        Path model = Files.createDirectories(work.resolve("no-scale"));
        new SafetensorsTestWriter().add("model.layers.0.mlp.down_proj.weight", DType.F8_E4M3, new long[]{2, 2}, new byte[4])
                .write(model.resolve("model.safetensors"));
        try (Checkpoint checkpoint = new dev.jvllm.weights.Fp8Checkpoint(Checkpoint.open(model), DType.BF16, null)) {
            var e = assertThrows(WeightsException.class, () -> checkpoint.get("model.layers.0.mlp.down_proj.weight"));
            assertTrue(e.getMessage().contains("model.layers.0.mlp.down_proj.weight_scale"), e.getMessage());
        }
    }
}
