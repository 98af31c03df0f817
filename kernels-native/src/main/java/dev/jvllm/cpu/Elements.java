package dev.jvllm.cpu;

import dev.jvllm.weights.DType;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * Scalar access to the elements the CPU backend stores: float32 activations, int32 indices and
 * weights in F32, BF16 or F16, all little-endian and possibly unaligned (checkpoint slices).
 * Indices are element indices, not byte offsets.
 */
final class Elements {

    static final ValueLayout.OfFloat FLOAT = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final ValueLayout.OfShort SHORT = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final ValueLayout.OfInt INT = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private Elements() {
    }

    /** bfloat16 is the high half of a float32, so widening is a shift. */
    static float bf16ToFloat(short bits) {
        return Float.intBitsToFloat(bits << 16);
    }

    /** Rounds to nearest even, the conversion PyTorch uses (NaN stays NaN). */
    static short floatToBf16(float value) {
        int bits = Float.floatToRawIntBits(value);
        if (Float.isNaN(value)) {
            return (short) ((bits >>> 16) | 0x40);
        }
        int roundingBias = 0x7FFF + ((bits >>> 16) & 1);
        return (short) ((bits + roundingBias) >>> 16);
    }

    static float getFloat(MemorySegment segment, long index) {
        return segment.get(FLOAT, index * Float.BYTES);
    }

    static void setFloat(MemorySegment segment, long index, float value) {
        segment.set(FLOAT, index * Float.BYTES, value);
    }

    static int getInt(MemorySegment segment, long index) {
        return segment.get(INT, index * Integer.BYTES);
    }

    static float getBf16(MemorySegment segment, long index) {
        return bf16ToFloat(segment.get(SHORT, index * Short.BYTES));
    }

    static float getF16(MemorySegment segment, long index) {
        return Float.float16ToFloat(segment.get(SHORT, index * Short.BYTES));
    }

    /** One element of a tensor of any type the backend holds, as float. */
    static float get(DType type, MemorySegment segment, long index) {
        return switch (type) {
            case F32 -> getFloat(segment, index);
            case BF16 -> getBf16(segment, index);
            case F16 -> getF16(segment, index);
            case I32 -> getInt(segment, index);
            default -> throw new IllegalArgumentException("the CPU backend holds no " + type + " tensors");
        };
    }
}
