package dev.jvllm.cpu;

import dev.jvllm.weights.DType;
import jdk.incubator.vector.FloatVector;

import java.lang.constant.ConstantDescs;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandles;
import java.util.Objects;

import static dev.jvllm.cpu.VectorShapes.FLOATS;
import static dev.jvllm.cpu.VectorShapes.LANES;
import static dev.jvllm.cpu.VectorShapes.floats;
import static dev.jvllm.cpu.VectorShapes.tailDot;
import static dev.jvllm.cpu.VectorShapes.tailWiden;
import static jdk.incubator.vector.VectorOperators.ADD;

/**
 * Vector-API weight loops for the weights of one type, widened to float32 by its
 * {@link VectorWidening}. This class is never used itself: each weight type runs its own copy,
 * defined as a hidden class by {@link VectorWidening#loops()} with the widening as class data, so
 * that {@link #WIDENING} is a constant to C2 and each type's loops are compiled with its load
 * inlined (see there why one shared copy is slower). The loops advance a {@code long} byte offset
 * into the weights, the shape C2 compiles best (about 1.5x faster than deriving the offset from an
 * int index).
 */
final class VectorWeightLoops implements WeightLoops {

    /** This copy's widening (the class itself, never used, has none and would fail to initialize). */
    private static final VectorWidening WIDENING = classData();
    private static final DType TYPE = WIDENING.type();
    /** Bytes of weights per float vector. */
    private static final long STEP = (long) LANES * TYPE.byteSize();

    private static VectorWidening classData() {
        try {
            return Objects.requireNonNull(
                    MethodHandles.classData(MethodHandles.lookup(), ConstantDescs.DEFAULT_NAME, VectorWidening.class),
                    "VectorWeightLoops runs only as a copy from VectorWidening.loops()");
        } catch (IllegalAccessException e) {
            throw new IllegalStateException(e);
        }
    }

    /** Byte offset of element {@code index}. */
    private static long offset(long index) {
        return index * TYPE.byteSize();
    }

    @Override
    public String toString() {
        return "VectorWeightLoops(" + TYPE + ")";
    }

    @Override
    public float dot(MemorySegment w, long wIndex, float[] x, int xIndex, int n) {
        if (WIDENING.fewLoads()) {
            return dotTwoSums(w, wIndex, x, xIndex, n);
        }
        FloatVector s0 = FloatVector.zero(FLOATS), s1 = s0, s2 = s0, s3 = s0;
        int unrolled = n - n % (4 * LANES);
        int vectorized = n - n % LANES;
        long at = offset(wIndex);
        int xi = xIndex;
        // Four independent sums keep several loads in flight; the stream of w is what bounds it.
        for (long end = offset(wIndex + unrolled); at < end; at += 4 * STEP, xi += 4 * LANES) {
            s0 = WIDENING.load(w, at).fma(floats(x, xi), s0);
            s1 = WIDENING.load(w, at + STEP).fma(floats(x, xi + LANES), s1);
            s2 = WIDENING.load(w, at + 2 * STEP).fma(floats(x, xi + 2 * LANES), s2);
            s3 = WIDENING.load(w, at + 3 * STEP).fma(floats(x, xi + 3 * LANES), s3);
        }
        for (long end = offset(wIndex + vectorized); at < end; at += STEP, xi += LANES) {
            s0 = WIDENING.load(w, at).fma(floats(x, xi), s0);
        }
        return s0.add(s1).add(s2.add(s3)).reduceLanes(ADD) + tailDot(TYPE, w, wIndex, x, xIndex, vectorized, n);
    }

    /** {@link #dot} for a widening of {@link VectorWidening#fewLoads few loads}: two sums, not four. */
    private static float dotTwoSums(MemorySegment w, long wIndex, float[] x, int xIndex, int n) {
        FloatVector s0 = FloatVector.zero(FLOATS), s1 = s0;
        int unrolled = n - n % (2 * LANES);
        int vectorized = n - n % LANES;
        long at = offset(wIndex);
        int xi = xIndex;
        for (long end = offset(wIndex + unrolled); at < end; at += 2 * STEP, xi += 2 * LANES) {
            s0 = WIDENING.load(w, at).fma(floats(x, xi), s0);
            s1 = WIDENING.load(w, at + STEP).fma(floats(x, xi + LANES), s1);
        }
        for (long end = offset(wIndex + vectorized); at < end; at += STEP, xi += LANES) {
            s0 = WIDENING.load(w, at).fma(floats(x, xi), s0);
        }
        return s0.add(s1).reduceLanes(ADD) + tailDot(TYPE, w, wIndex, x, xIndex, vectorized, n);
    }

    @Override
    public void dotEightRows(MemorySegment w, long wIndex, long rowStride, float[] x, int xIndex, int n,
                             float[] dots) {
        if (WIDENING.fewLoads()) {
            for (int r = 0; r < 8; r++) {
                dots[r] = dotTwoSums(w, wIndex + r * rowStride, x, xIndex, n);
            }
            return;
        }
        FloatVector s0 = FloatVector.zero(FLOATS), s1 = s0, s2 = s0, s3 = s0, s4 = s0, s5 = s0, s6 = s0, s7 = s0;
        long rowBytes = offset(rowStride);
        int vectorized = n - n % LANES;
        int xi = xIndex;
        for (long at = offset(wIndex), end = offset(wIndex + vectorized); at < end; at += STEP, xi += LANES) {
            FloatVector xv = floats(x, xi);
            s0 = WIDENING.load(w, at).fma(xv, s0);
            s1 = WIDENING.load(w, at + rowBytes).fma(xv, s1);
            s2 = WIDENING.load(w, at + 2 * rowBytes).fma(xv, s2);
            s3 = WIDENING.load(w, at + 3 * rowBytes).fma(xv, s3);
            s4 = WIDENING.load(w, at + 4 * rowBytes).fma(xv, s4);
            s5 = WIDENING.load(w, at + 5 * rowBytes).fma(xv, s5);
            s6 = WIDENING.load(w, at + 6 * rowBytes).fma(xv, s6);
            s7 = WIDENING.load(w, at + 7 * rowBytes).fma(xv, s7);
        }
        dots[0] = s0.reduceLanes(ADD);
        dots[1] = s1.reduceLanes(ADD);
        dots[2] = s2.reduceLanes(ADD);
        dots[3] = s3.reduceLanes(ADD);
        dots[4] = s4.reduceLanes(ADD);
        dots[5] = s5.reduceLanes(ADD);
        dots[6] = s6.reduceLanes(ADD);
        dots[7] = s7.reduceLanes(ADD);
        if (vectorized < n) {
            addTailDots(w, wIndex, rowStride, 8, x, new int[]{xIndex}, vectorized, n, dots);
        }
    }

    @Override
    public void dotTwoTokens(MemorySegment w, long wIndex, float[] x, int x0, int x1, int n, float[] dots) {
        if (WIDENING.fewLoads()) {
            dotTwoTokensTwoSums(w, wIndex, x, x0, x1, n, dots, 0);
            return;
        }
        FloatVector a0 = FloatVector.zero(FLOATS), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
        int unrolled = n - n % (4 * LANES);
        int vectorized = n - n % LANES;
        long at = offset(wIndex);
        int i = 0;
        for (long end = offset(wIndex + unrolled); at < end; at += 4 * STEP, i += 4 * LANES) {
            FloatVector w0 = WIDENING.load(w, at);
            FloatVector w1 = WIDENING.load(w, at + STEP);
            FloatVector w2 = WIDENING.load(w, at + 2 * STEP);
            FloatVector w3 = WIDENING.load(w, at + 3 * STEP);
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
            FloatVector w0 = WIDENING.load(w, at);
            a0 = w0.fma(floats(x, x0 + i), a0);
            b0 = w0.fma(floats(x, x1 + i), b0);
        }
        dots[0] = a0.add(a1).add(a2.add(a3)).reduceLanes(ADD) + tailDot(TYPE, w, wIndex, x, x0, vectorized, n);
        dots[1] = b0.add(b1).add(b2.add(b3)).reduceLanes(ADD) + tailDot(TYPE, w, wIndex, x, x1, vectorized, n);
    }

    /** {@link #dotTwoTokens} for a widening of {@link VectorWidening#fewLoads few loads}, into {@code dots[at..at + 2)}. */
    private static void dotTwoTokensTwoSums(MemorySegment w, long wIndex, float[] x, int x0, int x1, int n, float[] dots,
                                            int at) {
        FloatVector a0 = FloatVector.zero(FLOATS), a1 = a0, b0 = a0, b1 = a0;
        int unrolled = n - n % (2 * LANES);
        int vectorized = n - n % LANES;
        long wAt = offset(wIndex);
        int i = 0;
        for (long end = offset(wIndex + unrolled); wAt < end; wAt += 2 * STEP, i += 2 * LANES) {
            FloatVector w0 = WIDENING.load(w, wAt);
            FloatVector w1 = WIDENING.load(w, wAt + STEP);
            a0 = w0.fma(floats(x, x0 + i), a0);
            b0 = w0.fma(floats(x, x1 + i), b0);
            a1 = w1.fma(floats(x, x0 + i + LANES), a1);
            b1 = w1.fma(floats(x, x1 + i + LANES), b1);
        }
        for (long end = offset(wIndex + vectorized); wAt < end; wAt += STEP, i += LANES) {
            FloatVector w0 = WIDENING.load(w, wAt);
            a0 = w0.fma(floats(x, x0 + i), a0);
            b0 = w0.fma(floats(x, x1 + i), b0);
        }
        dots[at] = a0.add(a1).reduceLanes(ADD) + tailDot(TYPE, w, wIndex, x, x0, vectorized, n);
        dots[at + 1] = b0.add(b1).reduceLanes(ADD) + tailDot(TYPE, w, wIndex, x, x1, vectorized, n);
    }

    @Override
    public void dotFourRowsTwoTokens(MemorySegment w, long wIndex, long rowStride, float[] x, int x0, int x1, int n,
                                     float[] dots) {
        if (WIDENING.fewLoads()) {
            for (int r = 0; r < 4; r++) {
                dotTwoTokensTwoSums(w, wIndex + r * rowStride, x, x0, x1, n, dots, 2 * r);
            }
            return;
        }
        FloatVector a0 = FloatVector.zero(FLOATS), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
        long first = offset(wIndex);
        long rowBytes = offset(rowStride);
        int vectorized = n - n % LANES;
        // Indexed by the int i (not a byte offset) so C2 hoists the bounds checks of the x loads.
        for (int i = 0; i < vectorized; i += LANES) {
            long at = first + offset(i);
            FloatVector xa = floats(x, x0 + i);
            FloatVector xb = floats(x, x1 + i);
            FloatVector wv = WIDENING.load(w, at);
            a0 = wv.fma(xa, a0);
            b0 = wv.fma(xb, b0);
            wv = WIDENING.load(w, at + rowBytes);
            a1 = wv.fma(xa, a1);
            b1 = wv.fma(xb, b1);
            wv = WIDENING.load(w, at + 2 * rowBytes);
            a2 = wv.fma(xa, a2);
            b2 = wv.fma(xb, b2);
            wv = WIDENING.load(w, at + 3 * rowBytes);
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
            addTailDots(w, wIndex, rowStride, 4, x, new int[]{x0, x1}, vectorized, n, dots);
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
            FloatVector wa = WIDENING.load(w, first + at);
            FloatVector wb = WIDENING.load(w, second + at);
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
            addTailDots(w, wIndex, rowStride, 2, x, new int[]{x0, x1, x2, x3}, vectorized, n, dots);
        }
    }

    /**
     * On unless {@code -Djvllm.cpu.threeRowTiles=false}, for widenings with {@link
     * VectorWidening#widerTiles wider tiles}: twelve sums, three widened weights and an x vector
     * need 16 vector registers beside the loop's own, so only with AVX-512's 32. Measured in the
     * engine on Zen 4 (benchmarks/results/README.md): a 16-row decode step of the 1B shape (BF16) at
     * 0.82x the CPU time of the two-row tile (a four-row tile, sixteen sums, was slower in the
     * engine and is gone).
     */
    private static final boolean THREE_ROW_TILES = Boolean.parseBoolean(System.getProperty("jvllm.cpu.threeRowTiles", "true"));

    @Override
    public boolean threeRowTiles() {
        return THREE_ROW_TILES && WIDENING.widerTiles() && LANES >= 16;
    }

    @Override
    public void dotThreeRowsFourTokens(MemorySegment w, long wIndex, long rowStride, float[] x, int x0, int x1, int x2,
                                       int x3, int n, float[] dots) {
        if (WIDENING.fewLoads()) {
            WeightLoops.super.dotThreeRowsFourTokens(w, wIndex, rowStride, x, x0, x1, x2, x3, n, dots);
            return;
        }
        FloatVector a0 = FloatVector.zero(FLOATS), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
        FloatVector c0 = a0, c1 = a0, c2 = a0, c3 = a0;
        long ra = offset(wIndex);
        long rb = offset(wIndex + rowStride);
        long rc = offset(wIndex + 2 * rowStride);
        int vectorized = n - n % LANES;
        for (int i = 0; i < vectorized; i += LANES) {
            long at = offset(i);
            FloatVector wa = WIDENING.load(w, ra + at);
            FloatVector wb = WIDENING.load(w, rb + at);
            FloatVector wc = WIDENING.load(w, rc + at);
            FloatVector xv = floats(x, x0 + i);
            a0 = wa.fma(xv, a0);
            b0 = wb.fma(xv, b0);
            c0 = wc.fma(xv, c0);
            xv = floats(x, x1 + i);
            a1 = wa.fma(xv, a1);
            b1 = wb.fma(xv, b1);
            c1 = wc.fma(xv, c1);
            xv = floats(x, x2 + i);
            a2 = wa.fma(xv, a2);
            b2 = wb.fma(xv, b2);
            c2 = wc.fma(xv, c2);
            xv = floats(x, x3 + i);
            a3 = wa.fma(xv, a3);
            b3 = wb.fma(xv, b3);
            c3 = wc.fma(xv, c3);
        }
        dots[0] = a0.reduceLanes(ADD);
        dots[1] = a1.reduceLanes(ADD);
        dots[2] = a2.reduceLanes(ADD);
        dots[3] = a3.reduceLanes(ADD);
        dots[4] = b0.reduceLanes(ADD);
        dots[5] = b1.reduceLanes(ADD);
        dots[6] = b2.reduceLanes(ADD);
        dots[7] = b3.reduceLanes(ADD);
        dots[8] = c0.reduceLanes(ADD);
        dots[9] = c1.reduceLanes(ADD);
        dots[10] = c2.reduceLanes(ADD);
        dots[11] = c3.reduceLanes(ADD);
        if (vectorized < n) {
            addTailDots(w, wIndex, rowStride, 3, x, new int[]{x0, x1, x2, x3}, vectorized, n, dots);
        }
    }

    /**
     * Adds to {@code dots[r × xs.length + t]} the dot of weight row r (rows {@code rowStride} apart)
     * with token t's x over the elements from {@code vectorized} to {@code n}: what a tile's vector
     * loop leaves over.
     */
    private static void addTailDots(MemorySegment w, long wIndex, long rowStride, int rows, float[] x, int[] xs,
                                    int vectorized, int n, float[] dots) {
        for (int r = 0; r < rows; r++) {
            for (int t = 0; t < xs.length; t++) {
                dots[r * xs.length + t] += tailDot(TYPE, w, wIndex + r * rowStride, x, xs[t], vectorized, n);
            }
        }
    }

    @Override
    public void widen(MemorySegment w, long wIndex, float[] dst, int dstIndex, int n) {
        int vectorized = n - n % LANES;
        int i = dstIndex;
        for (long at = offset(wIndex), end = offset(wIndex + vectorized); at < end; at += STEP, i += LANES) {
            WIDENING.load(w, at).intoArray(dst, i);
        }
        tailWiden(TYPE, w, wIndex, dst, dstIndex, vectorized, n);
    }
}
