package dev.jvllm.cpu;

import dev.jvllm.weights.DType;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;

import java.lang.foreign.MemorySegment;

import static dev.jvllm.cpu.VectorShapes.FLOATS;
import static dev.jvllm.cpu.VectorShapes.LANES;
import static dev.jvllm.cpu.VectorShapes.floats;
import static dev.jvllm.cpu.VectorShapes.tailDot;
import static dev.jvllm.cpu.VectorShapes.tailWiden;
import static jdk.incubator.vector.VectorOperators.ADD;

/**
 * Vector-API weight loops for BF16 weights: a bfloat16 is the high half of a float32, so a
 * load of 16-bit lanes sign-extended to int lanes and shifted left by 16 is the float.
 *
 * <p>The loops of {@code VectorF32Weights}, {@code VectorBf16Weights} and {@code VectorF16Weights}
 * differ only in {@link #load}. They are spelled out per type on purpose: HotSpot compiles a
 * method once for all callers, and a shared loop whose load is polymorphic stops being inlined
 * and allocates a vector per element (measured 7x slower).
 */
final class VectorBf16Weights implements WeightLoops {

    private static final DType TYPE = DType.BF16;

    /** Sign extension is harmless: the shift drops the upper half. */
    private static FloatVector load(MemorySegment w, long index) {
        return VectorShapes.halves(w, index).lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats();
    }

    @Override
    public float dot(MemorySegment w, long wIndex, MemorySegment x, long xIndex, int n) {
        FloatVector s0 = FloatVector.zero(FLOATS), s1 = s0, s2 = s0, s3 = s0;
        int i = 0;
        // Four independent sums keep several loads in flight; the stream of w is what bounds it.
        for (; i <= n - 4 * LANES; i += 4 * LANES) {
            s0 = load(w, wIndex + i).fma(floats(x, xIndex + i), s0);
            s1 = load(w, wIndex + i + LANES).fma(floats(x, xIndex + i + LANES), s1);
            s2 = load(w, wIndex + i + 2 * LANES).fma(floats(x, xIndex + i + 2 * LANES), s2);
            s3 = load(w, wIndex + i + 3 * LANES).fma(floats(x, xIndex + i + 3 * LANES), s3);
        }
        for (; i <= n - LANES; i += LANES) {
            s0 = load(w, wIndex + i).fma(floats(x, xIndex + i), s0);
        }
        return s0.add(s1).add(s2.add(s3)).reduceLanes(ADD) + tailDot(TYPE, w, wIndex, x, xIndex, i, n);
    }

    @Override
    public void dotEightRows(MemorySegment w, long wIndex, long rowStride, MemorySegment x, long xIndex, int n,
                             float[] dots) {
        FloatVector s0 = FloatVector.zero(FLOATS), s1 = s0, s2 = s0, s3 = s0, s4 = s0, s5 = s0, s6 = s0, s7 = s0;
        int i = 0;
        for (; i <= n - LANES; i += LANES) {
            FloatVector xi = floats(x, xIndex + i);
            long at = wIndex + i;
            s0 = load(w, at).fma(xi, s0);
            s1 = load(w, at + rowStride).fma(xi, s1);
            s2 = load(w, at + 2 * rowStride).fma(xi, s2);
            s3 = load(w, at + 3 * rowStride).fma(xi, s3);
            s4 = load(w, at + 4 * rowStride).fma(xi, s4);
            s5 = load(w, at + 5 * rowStride).fma(xi, s5);
            s6 = load(w, at + 6 * rowStride).fma(xi, s6);
            s7 = load(w, at + 7 * rowStride).fma(xi, s7);
        }
        dots[0] = s0.reduceLanes(ADD);
        dots[1] = s1.reduceLanes(ADD);
        dots[2] = s2.reduceLanes(ADD);
        dots[3] = s3.reduceLanes(ADD);
        dots[4] = s4.reduceLanes(ADD);
        dots[5] = s5.reduceLanes(ADD);
        dots[6] = s6.reduceLanes(ADD);
        dots[7] = s7.reduceLanes(ADD);
        if (i < n) {
            for (int r = 0; r < 8; r++) {
                dots[r] += tailDot(TYPE, w, wIndex + r * rowStride, x, xIndex, i, n);
            }
        }
    }

    @Override
    public void dotFourTokens(MemorySegment w, long wIndex, MemorySegment x, long x0, long x1, long x2, long x3, int n,
                              float[] dots) {
        FloatVector s0 = FloatVector.zero(FLOATS), s1 = s0, s2 = s0, s3 = s0;
        int i = 0;
        for (; i <= n - LANES; i += LANES) {
            FloatVector wi = load(w, wIndex + i);
            s0 = wi.fma(floats(x, x0 + i), s0);
            s1 = wi.fma(floats(x, x1 + i), s1);
            s2 = wi.fma(floats(x, x2 + i), s2);
            s3 = wi.fma(floats(x, x3 + i), s3);
        }
        dots[0] = s0.reduceLanes(ADD) + tailDot(TYPE, w, wIndex, x, x0, i, n);
        dots[1] = s1.reduceLanes(ADD) + tailDot(TYPE, w, wIndex, x, x1, i, n);
        dots[2] = s2.reduceLanes(ADD) + tailDot(TYPE, w, wIndex, x, x2, i, n);
        dots[3] = s3.reduceLanes(ADD) + tailDot(TYPE, w, wIndex, x, x3, i, n);
    }

    @Override
    public void widen(MemorySegment w, long wIndex, float[] dst, int dstIndex, int n) {
        int i = 0;
        for (; i <= n - LANES; i += LANES) {
            load(w, wIndex + i).intoArray(dst, dstIndex + i);
        }
        tailWiden(TYPE, w, wIndex, dst, dstIndex, i, n);
    }
}
