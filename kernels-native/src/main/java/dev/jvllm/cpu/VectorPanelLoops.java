package dev.jvllm.cpu;

import jdk.incubator.vector.FloatVector;

import static dev.jvllm.cpu.VectorShapes.FLOATS;
import static dev.jvllm.cpu.VectorShapes.LANES;

/**
 * {@link PanelLoops} on the Vector API: panels two vectors wide (32 columns with AVX-512, 16 with
 * AVX2), six rows of x, twelve vector sums. Per depth step: two panel loads, six broadcasts and
 * twelve FMAs, so the FMA unit rather than loads bounds it.
 */
final class VectorPanelLoops implements PanelLoops {

    private static final int WIDTH = 2 * LANES;

    @Override
    public int width() {
        return WIDTH;
    }

    /**
     * Up to four rows take a four-row loop, so a short last tile (16 tokens are 6 + 6 + 4) does
     * not pay for six. Each loop is its own method: one method holding both grows past what C2
     * inlines whole, and vector operations it leaves out allocate.
     */
    @Override
    public void multiply(float[] panel, int panelAt, int depth, float[] x, int xAt, int xStride, int rows,
                         float[] init, int initAt, float[] out, int outAt, int outStride) {
        if (rows > 4) {
            multiplySixRows(panel, panelAt, depth, x, xAt, xStride, rows, init, initAt, out, outAt, outStride);
        } else {
            multiplyFourRows(panel, panelAt, depth, x, xAt, xStride, rows, init, initAt, out, outAt, outStride);
        }
    }

    private static void multiplySixRows(float[] panel, int panelAt, int depth, float[] x, int xAt, int xStride,
                                        int rows, float[] init, int initAt, float[] out, int outAt, int outStride) {
        FloatVector low = init == null ? FloatVector.zero(FLOATS) : FloatVector.fromArray(FLOATS, init, initAt);
        FloatVector high = init == null ? low : FloatVector.fromArray(FLOATS, init, initAt + LANES);
        FloatVector s0a = low, s0b = high, s1a = low, s1b = high, s2a = low, s2b = high;
        FloatVector s3a = low, s3b = high, s4a = low, s4b = high, s5a = low, s5b = high;
        // Missing rows repeat the last one; their sums are dropped.
        int last = rows - 1;
        int x0 = xAt;
        int x1 = xAt + Math.min(1, last) * xStride;
        int x2 = xAt + Math.min(2, last) * xStride;
        int x3 = xAt + Math.min(3, last) * xStride;
        int x4 = xAt + Math.min(4, last) * xStride;
        int x5 = xAt + Math.min(5, last) * xStride;
        for (int k = 0; k < depth; k++) {
            int p = panelAt + k * WIDTH;
            FloatVector a = FloatVector.fromArray(FLOATS, panel, p);
            FloatVector b = FloatVector.fromArray(FLOATS, panel, p + LANES);
            FloatVector v = FloatVector.broadcast(FLOATS, x[x0 + k]);
            s0a = a.fma(v, s0a);
            s0b = b.fma(v, s0b);
            v = FloatVector.broadcast(FLOATS, x[x1 + k]);
            s1a = a.fma(v, s1a);
            s1b = b.fma(v, s1b);
            v = FloatVector.broadcast(FLOATS, x[x2 + k]);
            s2a = a.fma(v, s2a);
            s2b = b.fma(v, s2b);
            v = FloatVector.broadcast(FLOATS, x[x3 + k]);
            s3a = a.fma(v, s3a);
            s3b = b.fma(v, s3b);
            v = FloatVector.broadcast(FLOATS, x[x4 + k]);
            s4a = a.fma(v, s4a);
            s4b = b.fma(v, s4b);
            v = FloatVector.broadcast(FLOATS, x[x5 + k]);
            s5a = a.fma(v, s5a);
            s5b = b.fma(v, s5b);
        }
        s0a.intoArray(out, outAt);
        s0b.intoArray(out, outAt + LANES);
        if (rows > 1) {
            s1a.intoArray(out, outAt + outStride);
            s1b.intoArray(out, outAt + outStride + LANES);
        }
        if (rows > 2) {
            s2a.intoArray(out, outAt + 2 * outStride);
            s2b.intoArray(out, outAt + 2 * outStride + LANES);
        }
        if (rows > 3) {
            s3a.intoArray(out, outAt + 3 * outStride);
            s3b.intoArray(out, outAt + 3 * outStride + LANES);
        }
        if (rows > 4) {
            s4a.intoArray(out, outAt + 4 * outStride);
            s4b.intoArray(out, outAt + 4 * outStride + LANES);
        }
        if (rows > 5) {
            s5a.intoArray(out, outAt + 5 * outStride);
            s5b.intoArray(out, outAt + 5 * outStride + LANES);
        }
    }

    private static void multiplyFourRows(float[] panel, int panelAt, int depth, float[] x, int xAt, int xStride,
                                         int rows, float[] init, int initAt, float[] out, int outAt, int outStride) {
        FloatVector low = init == null ? FloatVector.zero(FLOATS) : FloatVector.fromArray(FLOATS, init, initAt);
        FloatVector high = init == null ? low : FloatVector.fromArray(FLOATS, init, initAt + LANES);
        FloatVector s0a = low, s0b = high, s1a = low, s1b = high, s2a = low, s2b = high, s3a = low, s3b = high;
        int last = rows - 1;
        int x0 = xAt;
        int x1 = xAt + Math.min(1, last) * xStride;
        int x2 = xAt + Math.min(2, last) * xStride;
        int x3 = xAt + Math.min(3, last) * xStride;
        for (int k = 0; k < depth; k++) {
            int p = panelAt + k * WIDTH;
            FloatVector a = FloatVector.fromArray(FLOATS, panel, p);
            FloatVector b = FloatVector.fromArray(FLOATS, panel, p + LANES);
            FloatVector v = FloatVector.broadcast(FLOATS, x[x0 + k]);
            s0a = a.fma(v, s0a);
            s0b = b.fma(v, s0b);
            v = FloatVector.broadcast(FLOATS, x[x1 + k]);
            s1a = a.fma(v, s1a);
            s1b = b.fma(v, s1b);
            v = FloatVector.broadcast(FLOATS, x[x2 + k]);
            s2a = a.fma(v, s2a);
            s2b = b.fma(v, s2b);
            v = FloatVector.broadcast(FLOATS, x[x3 + k]);
            s3a = a.fma(v, s3a);
            s3b = b.fma(v, s3b);
        }
        s0a.intoArray(out, outAt);
        s0b.intoArray(out, outAt + LANES);
        if (rows > 1) {
            s1a.intoArray(out, outAt + outStride);
            s1b.intoArray(out, outAt + outStride + LANES);
        }
        if (rows > 2) {
            s2a.intoArray(out, outAt + 2 * outStride);
            s2b.intoArray(out, outAt + 2 * outStride + LANES);
        }
        if (rows > 3) {
            s3a.intoArray(out, outAt + 3 * outStride);
            s3b.intoArray(out, outAt + 3 * outStride + LANES);
        }
    }
}
