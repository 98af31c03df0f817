package dev.jvllm.cpu;

import java.lang.foreign.MemorySegment;

/**
 * The inner loops that read weights of one element type (F32, BF16 or F16), widening each
 * element to float32 as it is used. Segment positions are element indices; {@code x} is float32.
 *
 * <p>The loops come in shapes that trade weight reads against activation reads: a decode step
 * (one token) streams each weight row once, and several tokens share each weight row read.
 */
interface WeightLoops {

    /** {@code Σ w[wIndex + i] · x[xIndex + i]} over {@code i < n}. */
    float dot(MemorySegment w, long wIndex, MemorySegment x, long xIndex, int n);

    /**
     * The dot products of eight consecutive weight rows, the first at {@code wIndex} and each
     * {@code rowStride} elements after the previous, with one x vector: {@code dots[0..8)}.
     * Each x element is loaded once for the eight rows.
     */
    void dotEightRows(MemorySegment w, long wIndex, long rowStride, MemorySegment x, long xIndex, int n, float[] dots);

    /**
     * The dot products of one weight row with four x vectors (tokens) starting at
     * {@code x0..x3}: {@code dots[0..4)}. Each weight element is loaded and widened once for the
     * four tokens. The x starts may repeat (padding a short block).
     */
    void dotFourTokens(MemorySegment w, long wIndex, MemorySegment x, long x0, long x1, long x2, long x3, int n,
                       float[] dots);

    /** {@code dst[dstIndex + i] = w[wIndex + i]} as float32, for {@code i < n}. */
    void widen(MemorySegment w, long wIndex, float[] dst, int dstIndex, int n);
}
