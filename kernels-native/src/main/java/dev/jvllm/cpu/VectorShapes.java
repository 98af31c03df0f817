package dev.jvllm.cpu;

import dev.jvllm.weights.DType;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;

/**
 * The vector species of the Vector-API loops, all derived from the preferred float species of
 * this machine so no width is assumed: {@link #FLOATS} (16 lanes with AVX-512, 8 with AVX2),
 * {@link #INTS} of the same shape, and {@link #SHORTS} of half the bits, so one load of 16-bit
 * weights widens to exactly one float vector. Also the scalar tails of those loops.
 */
final class VectorShapes {

    static final VectorSpecies<Float> FLOATS = FloatVector.SPECIES_PREFERRED;
    static final VectorSpecies<Integer> INTS = VectorSpecies.of(int.class, FLOATS.vectorShape());
    static final VectorSpecies<Short> SHORTS =
            VectorSpecies.of(short.class, VectorShape.forBitSize(FLOATS.vectorBitSize() / 2));
    static final int LANES = FLOATS.length();
    static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;

    private VectorShapes() {
    }

    /** The float32 vector at {@code index} of an activation array. */
    static FloatVector floats(float[] x, int index) {
        return FloatVector.fromArray(FLOATS, x, index);
    }

    /** The 16-bit elements at {@code byteOffset} sign-extended into int lanes, for widening. */
    static IntVector halves(MemorySegment w, long byteOffset) {
        return (IntVector) ShortVector.fromMemorySegment(SHORTS, w, byteOffset, LE)
                .convertShape(jdk.incubator.vector.VectorOperators.S2I, INTS, 0);
    }

    /** {@code Σ w[wIndex + i] · x[xIndex + i]} for {@code from <= i < n}: the tail a vector loop leaves. */
    static float tailDot(DType type, MemorySegment w, long wIndex, float[] x, int xIndex, int from, int n) {
        float sum = 0;
        for (int i = from; i < n; i++) {
            sum += Elements.get(type, w, wIndex + i) * x[xIndex + i];
        }
        return sum;
    }

    /** Widens elements {@code from <= i < n}: the tail a vector loop leaves. */
    static void tailWiden(DType type, MemorySegment w, long wIndex, float[] dst, int dstIndex, int from, int n) {
        for (int i = from; i < n; i++) {
            dst[dstIndex + i] = Elements.get(type, w, wIndex + i);
        }
    }

    static String describe() {
        return "Vector API, " + FLOATS.vectorBitSize() + "-bit vectors of " + LANES + " float lanes ("
                + FLOATS + ")";
    }
}
