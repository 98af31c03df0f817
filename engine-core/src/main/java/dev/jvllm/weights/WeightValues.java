package dev.jvllm.weights;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * A checkpoint tensor's elements on the heap as float32, for the few weights a model must rewrite
 * at load (reordered fused projections, normalized heads) before handing them to the backend, and
 * the scales of float8 weights ({@link Fp8Checkpoint}).
 */
public final class WeightValues {

    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(java.nio.ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfShort U16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(java.nio.ByteOrder.LITTLE_ENDIAN);

    private WeightValues() {
    }

    /** Every element of {@code t} in row-major order. */
    public static float[] floats(WeightTensor t) {
        long count = t.elementCount();
        if (count > Integer.MAX_VALUE - 8) {
            throw new WeightsException("tensor '" + t.name() + "' is too large to rewrite on the heap");
        }
        float[] out = new float[(int) count];
        MemorySegment data = t.data();
        for (int i = 0; i < out.length; i++) {
            out[i] = switch (t.dtype()) {
                case F32 -> data.getAtIndex(F32, i);
                case BF16 -> Float.intBitsToFloat(data.getAtIndex(U16, i) << 16);
                case F16 -> Float.float16ToFloat(data.getAtIndex(U16, i));
                default -> throw new WeightsException("tensor '" + t.name() + "' is " + t.dtype()
                        + "; only F32, BF16 and F16 weights can be rewritten at load");
            };
        }
        return out;
    }
}
