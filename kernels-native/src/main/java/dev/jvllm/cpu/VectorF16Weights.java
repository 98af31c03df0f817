package dev.jvllm.cpu;

import dev.jvllm.weights.DType;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;

import java.lang.foreign.MemorySegment;

import static dev.jvllm.cpu.VectorShapes.FLOATS;
import static dev.jvllm.cpu.VectorShapes.LANES;
import static dev.jvllm.cpu.VectorShapes.floats;
import static dev.jvllm.cpu.VectorShapes.tailDot;
import static dev.jvllm.cpu.VectorShapes.tailWiden;
import static jdk.incubator.vector.VectorOperators.ADD;

/**
 * Vector-API weight loops for F16 weights: the Vector API has no half-float conversion, so the
 * bits are rebuilt with integer operations (exact for normals, subnormals, infinities and NaN).
 *
 * <p>The loops of {@code VectorF32Weights}, {@code VectorBf16Weights} and {@code VectorF16Weights}
 * differ only in {@link #load}. They are spelled out per type on purpose: HotSpot compiles a
 * method once for all callers, and a shared loop whose load is polymorphic stops being inlined
 * and allocates a vector per element (measured 7x slower). The loops advance a {@code long} byte
 * offset into the weights, the shape C2 compiles best (about 1.5x faster than deriving the
 * offset from an int index).
 */
final class VectorF16Weights implements WeightLoops {

    private static final DType TYPE = DType.F16;
    /** Bytes of weights per float vector. */
    private static final long STEP = (long) LANES * TYPE.byteSize();

    /**
     * The half, sign-extended to 32 bits and shifted left by 13, has its exponent and mantissa in
     * float position and its sign in bit 31; masking bits 28..30 leaves a float 2^-112 times the
     * value, so one multiply rebases the exponent (15 → 127) and normalizes subnormals. Exponent
     * 31 (infinity, NaN) then gets the all-ones float exponent.
     */
    private static FloatVector load(MemorySegment w, long byteOffset) {
        IntVector half = VectorShapes.halves(w, byteOffset);
        FloatVector finite = half.lanewise(VectorOperators.LSHL, 13).and(0x8FFFE000).reinterpretAsFloats().mul(0x1p112f);
        // (exponent bits + 0x0400) reaches 0x8000 only for exponent 31; moved to bit 31 and spread, all ones.
        IntVector infinityOrNaN = half.and(0x7C00).add(0x0400).lanewise(VectorOperators.LSHL, 16)
                .lanewise(VectorOperators.ASHR, 31).and(0x7F800000);
        return finite.reinterpretAsInts().or(infinityOrNaN).reinterpretAsFloats();
    }

    /** Byte offset of element {@code index}. */
    private static long offset(long index) {
        return index * TYPE.byteSize();
    }

    /** Two sums, not four: the conversion is long enough that more copies exceed C2's inlining budget. */
    @Override
    public float dot(MemorySegment w, long wIndex, float[] x, int xIndex, int n) {
        FloatVector s0 = FloatVector.zero(FLOATS), s1 = s0;
        int unrolled = n - n % (2 * LANES);
        int vectorized = n - n % LANES;
        long at = offset(wIndex);
        int xi = xIndex;
        for (long end = offset(wIndex + unrolled); at < end; at += 2 * STEP, xi += 2 * LANES) {
            s0 = load(w, at).fma(floats(x, xi), s0);
            s1 = load(w, at + STEP).fma(floats(x, xi + LANES), s1);
        }
        for (long end = offset(wIndex + vectorized); at < end; at += STEP, xi += LANES) {
            s0 = load(w, at).fma(floats(x, xi), s0);
        }
        return s0.add(s1).reduceLanes(ADD) + tailDot(TYPE, w, wIndex, x, xIndex, vectorized, n);
    }

    @Override
    public void dotEightRows(MemorySegment w, long wIndex, long rowStride, float[] x, int xIndex, int n,
                             float[] dots) {
        // Eight conversions per iteration exceed C2's inlining budget (the loop then allocates a
        // vector per element), so F16 rows are taken one at a time.
        for (int r = 0; r < 8; r++) {
            dots[r] = dot(w, wIndex + r * rowStride, x, xIndex, n);
        }
    }

    @Override
    public void dotTwoTokens(MemorySegment w, long wIndex, float[] x, int x0, int x1, int n, float[] dots) {
        FloatVector a0 = FloatVector.zero(FLOATS), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
        int unrolled = n - n % (4 * LANES);
        int vectorized = n - n % LANES;
        long at = offset(wIndex);
        int i = 0;
        for (long end = offset(wIndex + unrolled); at < end; at += 4 * STEP, i += 4 * LANES) {
            FloatVector w0 = load(w, at);
            FloatVector w1 = load(w, at + STEP);
            FloatVector w2 = load(w, at + 2 * STEP);
            FloatVector w3 = load(w, at + 3 * STEP);
            a0 = w0.fma(floats(x, x0 + i), a0);
            b0 = w0.fma(floats(x, x1 + i), b0);
            a1 = w1.fma(floats(x, x0 + i + LANES), a1);
            b1 = w1.fma(floats(x, x1 + i + LANES), b1);
            a2 = w2.fma(floats(x, x0 + i + 2 * LANES), a2);
            b2 = w2.fma(floats(x, x1 + i + 2 * LANES), b2);
            a3 = w3.fma(floats(x, x0 + i + 3 * LANES), a3);
            b3 = w3.fma(floats(x, x1 + i + 3 * LANES), b3);
        }
        for (long end = offset(wIndex + vectorized); at < end; at += STEP, i += LANES) {
            FloatVector w0 = load(w, at);
            a0 = w0.fma(floats(x, x0 + i), a0);
            b0 = w0.fma(floats(x, x1 + i), b0);
        }
        dots[0] = a0.add(a1).add(a2.add(a3)).reduceLanes(ADD) + tailDot(TYPE, w, wIndex, x, x0, vectorized, n);
        dots[1] = b0.add(b1).add(b2.add(b3)).reduceLanes(ADD) + tailDot(TYPE, w, wIndex, x, x1, vectorized, n);
    }

    @Override
    public void dotFourRowsTwoTokens(MemorySegment w, long wIndex, long rowStride, float[] x, int x0, int x1, int n,
                                     float[] dots) {
        FloatVector a0 = FloatVector.zero(FLOATS), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
        long first = offset(wIndex);
        long rowBytes = offset(rowStride);
        int vectorized = n - n % LANES;
        // Indexed by the int i (not a byte offset) so C2 hoists the bounds checks of the x loads.
        for (int i = 0; i < vectorized; i += LANES) {
            long at = first + offset(i);
            FloatVector xa = floats(x, x0 + i);
            FloatVector xb = floats(x, x1 + i);
            FloatVector wv = load(w, at);
            a0 = wv.fma(xa, a0);
            b0 = wv.fma(xb, b0);
            wv = load(w, at + rowBytes);
            a1 = wv.fma(xa, a1);
            b1 = wv.fma(xb, b1);
            wv = load(w, at + 2 * rowBytes);
            a2 = wv.fma(xa, a2);
            b2 = wv.fma(xb, b2);
            wv = load(w, at + 3 * rowBytes);
            a3 = wv.fma(xa, a3);
            b3 = wv.fma(xb, b3);
        }
        dots[0] = a0.reduceLanes(ADD);
        dots[1] = b0.reduceLanes(ADD);
        dots[2] = a1.reduceLanes(ADD);
        dots[3] = b1.reduceLanes(ADD);
        dots[4] = a2.reduceLanes(ADD);
        dots[5] = b2.reduceLanes(ADD);
        dots[6] = a3.reduceLanes(ADD);
        dots[7] = b3.reduceLanes(ADD);
        if (vectorized < n) {
            for (int r = 0; r < 4; r++) {
                dots[2 * r] += tailDot(TYPE, w, wIndex + r * rowStride, x, x0, vectorized, n);
                dots[2 * r + 1] += tailDot(TYPE, w, wIndex + r * rowStride, x, x1, vectorized, n);
            }
        }
    }

    @Override
    public void dotTwoRowsFourTokens(MemorySegment w, long wIndex, long rowStride, float[] x, int x0, int x1, int x2,
                                     int x3, int n, float[] dots) {
        FloatVector a0 = FloatVector.zero(FLOATS), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
        long first = offset(wIndex);
        long second = offset(wIndex + rowStride);
        int vectorized = n - n % LANES;
        // Indexed by the int i (not a byte offset) so C2 hoists the bounds checks of the four x loads.
        for (int i = 0; i < vectorized; i += LANES) {
            long at = offset(i);
            FloatVector wa = load(w, first + at);
            FloatVector wb = load(w, second + at);
            FloatVector xv = floats(x, x0 + i);
            a0 = wa.fma(xv, a0);
            b0 = wb.fma(xv, b0);
            xv = floats(x, x1 + i);
            a1 = wa.fma(xv, a1);
            b1 = wb.fma(xv, b1);
            xv = floats(x, x2 + i);
            a2 = wa.fma(xv, a2);
            b2 = wb.fma(xv, b2);
            xv = floats(x, x3 + i);
            a3 = wa.fma(xv, a3);
            b3 = wb.fma(xv, b3);
        }
        dots[0] = a0.reduceLanes(ADD);
        dots[1] = a1.reduceLanes(ADD);
        dots[2] = a2.reduceLanes(ADD);
        dots[3] = a3.reduceLanes(ADD);
        dots[4] = b0.reduceLanes(ADD);
        dots[5] = b1.reduceLanes(ADD);
        dots[6] = b2.reduceLanes(ADD);
        dots[7] = b3.reduceLanes(ADD);
        if (vectorized < n) {
            long other = wIndex + rowStride;
            dots[0] += tailDot(TYPE, w, wIndex, x, x0, vectorized, n);
            dots[1] += tailDot(TYPE, w, wIndex, x, x1, vectorized, n);
            dots[2] += tailDot(TYPE, w, wIndex, x, x2, vectorized, n);
            dots[3] += tailDot(TYPE, w, wIndex, x, x3, vectorized, n);
            dots[4] += tailDot(TYPE, w, other, x, x0, vectorized, n);
            dots[5] += tailDot(TYPE, w, other, x, x1, vectorized, n);
            dots[6] += tailDot(TYPE, w, other, x, x2, vectorized, n);
            dots[7] += tailDot(TYPE, w, other, x, x3, vectorized, n);
        }
    }

    @Override
    public void widen(MemorySegment w, long wIndex, float[] dst, int dstIndex, int n) {
        int vectorized = n - n % LANES;
        int i = dstIndex;
        for (long at = offset(wIndex), end = offset(wIndex + vectorized); at < end; at += STEP, i += LANES) {
            load(w, at).intoArray(dst, i);
        }
        tailWiden(TYPE, w, wIndex, dst, dstIndex, vectorized, n);
    }
}
