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
        for (int i = 0; i < out.length; i++) out[i] = element(t, i);
        return out;
    }

    /** Rows {@code rows} of a matrix {@code t}, one after another (a few rows of an embedding table, without reading the rest). */
    public static float[] rows(WeightTensor t, int[] rows) {
        if (t.rank() != 2) throw new WeightsException("tensor '" + t.name() + "' is not a matrix: " + java.util.Arrays.toString(t.shape()));
        long cols = t.dim(1);
        float[] out = new float[Math.toIntExact(rows.length * cols)];
        for (int r = 0; r < rows.length; r++) {
            if (rows[r] < 0 || rows[r] >= t.dim(0)) {
                throw new WeightsException("row " + rows[r] + " is outside tensor '" + t.name() + "' of " + t.dim(0) + " rows");
            }
            for (int c = 0; c < cols; c++) out[(int) (r * cols + c)] = element(t, rows[r] * cols + c);
        }
        return out;
    }

    private static float element(WeightTensor t, long i) {
        MemorySegment data = t.data();
        return switch (t.dtype()) {
            case F32 -> data.getAtIndex(F32, i);
            case BF16 -> Float.intBitsToFloat(data.getAtIndex(U16, i) << 16);
            case F16 -> Float.float16ToFloat(data.getAtIndex(U16, i));
            default -> throw new WeightsException("tensor '" + t.name() + "' is " + t.dtype()
                    + "; only F32, BF16 and F16 weights can be rewritten at load");
        };
    }
}
