package dev.jvllm.cpu;

import java.lang.foreign.MemorySegment;

/**
 * The inner loops that read weights of one element type (F32, BF16 or F16) from a memory
 * segment, widening each element to float32 as it is used, against float32 activations in
 * arrays. Weight positions are element indices into the segment.
 *
 * <p>The loops come in shapes that trade weight reads against activation reads: a decode step
 * (one token) streams each weight row once, and several tokens share each weight row read.
 */
interface WeightLoops {

    /** {@code Σ w[wIndex + i] · x[xIndex + i]} over {@code i < n}. */
    float dot(MemorySegment w, long wIndex, float[] x, int xIndex, int n);

    /**
     * The dot products of eight consecutive weight rows, the first at {@code wIndex} and each
     * {@code rowStride} elements after the previous, with one x vector: {@code dots[0..8)}.
     * Each x element is loaded once for the eight rows.
     */
    void dotEightRows(MemorySegment w, long wIndex, long rowStride, float[] x, int xIndex, int n, float[] dots);

    /**
     * The dot products of one weight row with two x vectors (tokens) at {@code x0} and {@code x1}:
     * {@code dots[0..2)}. Each weight element is widened once for both tokens, in one stream.
     */
    default void dotTwoTokens(MemorySegment w, long wIndex, float[] x, int x0, int x1, int n, float[] dots) {
        dots[0] = dot(w, wIndex, x, x0, n);
        dots[1] = dot(w, wIndex, x, x1, n);
    }

    /**
     * The dot products of four weight rows (each {@code rowStride} elements after the previous)
     * with two x vectors (tokens) at {@code x0} and {@code x1}: {@code dots[r × 2 + t]} for row r
     * and token t. Each weight element is widened once for both tokens and each x element loaded
     * once for four rows.
     */
    default void dotFourRowsTwoTokens(MemorySegment w, long wIndex, long rowStride, float[] x, int x0, int x1, int n,
                                      float[] dots) {
        for (int r = 0; r < 4; r++) {
            dots[2 * r] = dot(w, wIndex + r * rowStride, x, x0, n);
            dots[2 * r + 1] = dot(w, wIndex + r * rowStride, x, x1, n);
        }
    }

    /**
     * The dot products of two weight rows (at {@code wIndex} and {@code rowStride} elements
     * further; a stride of 0 repeats the row) with four x vectors (tokens) starting at
     * {@code x0..x3}: {@code dots[r × 4 + t]} for row r and token t. Each weight element is
     * widened once for four tokens and each x element loaded once for two rows. The x starts may
     * repeat (padding a short block).
     */
    void dotTwoRowsFourTokens(MemorySegment w, long wIndex, long rowStride, float[] x, int x0, int x1, int x2, int x3,
                              int n, float[] dots);

    /** Whether {@link #dotThreeRowsFourTokens} is the faster tile (its own loop, enough registers). */
    default boolean threeRowTiles() {
        return false;
    }

    /**
     * As {@link #dotTwoRowsFourTokens} for three weight rows: {@code dots[r × 4 + t]} for
     * {@code r < 3}. Twelve sums in registers; each x load serves three rows.
     */
    default void dotThreeRowsFourTokens(MemorySegment w, long wIndex, long rowStride, float[] x, int x0, int x1, int x2,
                                        int x3, int n, float[] dots) {
        dotTwoRowsFourTokens(w, wIndex + 2 * rowStride, 0, x, x0, x1, x2, x3, n, dots);
        System.arraycopy(dots, 0, dots, 8, 4);
        dotTwoRowsFourTokens(w, wIndex, rowStride, x, x0, x1, x2, x3, n, dots);
    }

    /** {@code dst[dstIndex + i] = w[wIndex + i]} as float32, for {@code i < n}. */
    void widen(MemorySegment w, long wIndex, float[] dst, int dstIndex, int n);
}
