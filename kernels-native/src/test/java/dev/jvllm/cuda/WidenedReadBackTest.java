package dev.jvllm.cuda;

import dev.jvllm.weights.DType;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * What {@link CudaBackend#toFloatArray} makes of the bytes it reads back (runs without a GPU):
 * every 16-bit pattern widens to the float it encodes, negatives, infinities and NaNs included,
 * and float32 and int32 elements arrive unchanged.
 */
class WidenedReadBackTest {

    @Test
    void everyBfloat16AndFloat16PatternWidensToTheFloatItEncodes() {
        int n = 1 << 16;
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment host = arena.allocate(2L * n, 16);
            for (int i = 0; i < n; i++) host.setAtIndex(ValueLayout.JAVA_SHORT, i, (short) i);
            float[] bf16 = CudaBackend.widened(host, DType.BF16, n);
            float[] f16 = CudaBackend.widened(host, DType.F16, n);
            for (int i = 0; i < n; i++) {
                assertEquals(Float.floatToRawIntBits(Float.intBitsToFloat(i << 16)), Float.floatToRawIntBits(bf16[i]),
                        "bfloat16 0x" + Integer.toHexString(i));
                assertEquals(Float.floatToRawIntBits(Float.float16ToFloat((short) i)), Float.floatToRawIntBits(f16[i]),
                        "float16 0x" + Integer.toHexString(i));
            }
            assertEquals(-2.0f, bf16[0xC000]);
            assertEquals(Float.NEGATIVE_INFINITY, f16[0xFC00]);
        }
    }

    @Test
    void float32AndInt32ElementsArriveUnchanged() {
        float[] floats = {0f, -1.5f, 3.25e-7f, Float.MAX_VALUE, Float.NaN, -0f};
        int[] ints = {0, -7, 128255, Integer.MIN_VALUE};
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment f = arena.allocate(4L * floats.length, 16);
            MemorySegment.copy(floats, 0, f, ValueLayout.JAVA_FLOAT, 0, floats.length);
            assertArrayEquals(floats, CudaBackend.widened(f, DType.F32, floats.length));
            MemorySegment i = arena.allocate(4L * ints.length, 16);
            MemorySegment.copy(ints, 0, i, ValueLayout.JAVA_INT, 0, ints.length);
            assertArrayEquals(new float[]{0f, -7f, 128255f, (float) Integer.MIN_VALUE},
                    CudaBackend.widened(i, DType.I32, ints.length));
        }
    }
}
