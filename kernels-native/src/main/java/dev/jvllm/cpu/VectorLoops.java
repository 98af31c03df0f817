package dev.jvllm.cpu;

import dev.jvllm.spi.Activation;
import dev.jvllm.weights.DType;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;

import java.lang.foreign.MemorySegment;

import static dev.jvllm.cpu.VectorShapes.FLOATS;
import static dev.jvllm.cpu.VectorShapes.LANES;
import static dev.jvllm.cpu.VectorShapes.floats;

/**
 * Inner loops on the Vector API, width-agnostic (see {@link VectorShapes}). Loaded only by name
 * from {@link InnerLoops#select()}, so this class and the Vector API stay unlinked when the
 * {@code jdk.incubator.vector} module is absent. Each loop finishes its last {@code n % LANES}
 * elements with scalar code.
 */
final class VectorLoops implements InnerLoops {

    /** One copy of the weight loops per type for the whole JVM: each copy is compiled on its own. */
    private static final WeightLoops F32_WEIGHTS = VectorWidening.F32.loops();
    private static final WeightLoops BF16_WEIGHTS = VectorWidening.BF16.loops();
    private static final WeightLoops F16_WEIGHTS = VectorWidening.F16.loops();

    private final PanelLoops panels = new VectorPanelLoops();

    @Override
    public String description() {
        return VectorShapes.describe();
    }

    @Override
    public PanelLoops panels() {
        return panels;
    }

    @Override
    public WeightLoops weights(DType type) {
        return switch (type) {
            case F32 -> F32_WEIGHTS;
            case BF16 -> BF16_WEIGHTS;
            case F16 -> F16_WEIGHTS;
            default -> throw new IllegalArgumentException("no weight loops for " + type);
        };
    }

    @Override
    public float dot(MemorySegment k, long kIndex, float[] q, int qIndex, int n) {
        return F32_WEIGHTS.dot(k, kIndex, q, qIndex, n);
    }

    @Override
    public void addScaled(float alpha, MemorySegment v, long vIndex, float[] y, int n) {
        FloatVector a = FloatVector.broadcast(FLOATS, alpha);
        int i = 0;
        for (; i <= n - LANES; i += LANES) {
            FloatVector.fromMemorySegment(FLOATS, v, (vIndex + i) * Float.BYTES, VectorShapes.LE)
                    .fma(a, floats(y, i)).intoArray(y, i);
        }
        for (; i < n; i++) {
            y[i] += alpha * Elements.getFloat(v, vIndex + i);
        }
    }

    /** Bytes per float vector. */
    private static final long STEP = (long) LANES * Float.BYTES;
    /**
     * Sixteen float vectors of sums in registers: only with AVX-512's 32 (16 lanes);
     * {@code -Djvllm.cpu.wideValueTile=false} keeps the 4 × 2 tile, for comparisons.
     */
    private static final boolean WIDE_VALUE_TILE = LANES >= 16
            && Boolean.parseBoolean(System.getProperty("jvllm.cpu.wideValueTile", "true"));

    private static FloatVector load(MemorySegment m, long byteOffset) {
        return FloatVector.fromMemorySegment(FLOATS, m, byteOffset, VectorShapes.LE);
    }

    /** Query heads four at a time share each loaded key vector; the rest one at a time. */
    @Override
    public void rowDots(MemorySegment k, long[] rows, int rowIndex, long kOffset, int count, float[] q, int qIndex, int qStride,
                        int heads, int n, float[] out, int outIndex, int outStride) {
        int vectorized = n - n % LANES;
        int h = 0;
        for (; h + 4 <= heads; h += 4) {
            int q0 = qIndex + h * qStride, q1 = q0 + qStride, q2 = q1 + qStride, q3 = q2 + qStride;
            int o0 = outIndex + h * outStride, o1 = o0 + outStride, o2 = o1 + outStride, o3 = o2 + outStride;
            for (int j = 0; j < count; j++) {
                long row = rows[rowIndex + j] + kOffset;
                long at = row * Float.BYTES;
                FloatVector a0 = FloatVector.zero(FLOATS), a1 = a0, a2 = a0, a3 = a0;
                for (int i = 0; i < vectorized; i += LANES, at += STEP) {
                    FloatVector kv = load(k, at);
                    a0 = kv.fma(floats(q, q0 + i), a0);
                    a1 = kv.fma(floats(q, q1 + i), a1);
                    a2 = kv.fma(floats(q, q2 + i), a2);
                    a3 = kv.fma(floats(q, q3 + i), a3);
                }
                float d0 = a0.reduceLanes(VectorOperators.ADD), d1 = a1.reduceLanes(VectorOperators.ADD);
                float d2 = a2.reduceLanes(VectorOperators.ADD), d3 = a3.reduceLanes(VectorOperators.ADD);
                for (int i = vectorized; i < n; i++) {
                    float kf = Elements.getFloat(k, row + i);
                    d0 += kf * q[q0 + i];
                    d1 += kf * q[q1 + i];
                    d2 += kf * q[q2 + i];
                    d3 += kf * q[q3 + i];
                }
                out[o0 + j] = d0;
                out[o1 + j] = d1;
                out[o2 + j] = d2;
                out[o3 + j] = d3;
            }
        }
        for (; h < heads; h++) {
            int q0 = qIndex + h * qStride;
            int o0 = outIndex + h * outStride;
            for (int j = 0; j < count; j++) {
                long row = rows[rowIndex + j] + kOffset;
                long at = row * Float.BYTES;
                FloatVector a0 = FloatVector.zero(FLOATS);
                for (int i = 0; i < vectorized; i += LANES, at += STEP) {
                    a0 = load(k, at).fma(floats(q, q0 + i), a0);
                }
                float d0 = a0.reduceLanes(VectorOperators.ADD);
                for (int i = vectorized; i < n; i++) {
                    d0 += Elements.getFloat(k, row + i) * q[q0 + i];
                }
                out[o0 + j] = d0;
            }
        }
    }

    /**
     * Four heads at a time over two vectors of the value width (eight sums held in registers over
     * all the rows), then one vector, then the scalar tail; leftover heads one at a time.
     */
    @Override
    public void weightedRows(float[] p, int pIndex, int pStride, int heads, MemorySegment v, long[] rows, int rowIndex,
                             long vOffset, int count, int n, float[] scales, float[] out, int outIndex,
                             int outStride) {
        int h = 0;
        for (; h + 4 <= heads; h += 4) {
            weightedRowsOfFour(p, pIndex + h * pStride, pStride, v, rows, rowIndex, vOffset, count, n, scales, h, out,
                    outIndex + h * outStride, outStride);
        }
        for (; h < heads; h++) {
            weightedRowsOfOne(p, pIndex + h * pStride, v, rows, rowIndex, vOffset, count, n, scales[h], out,
                    outIndex + h * outStride);
        }
    }

    private static void weightedRowsOfFour(float[] p, int p0, int pStride, MemorySegment v, long[] rows, int rowIndex,
                                           long vOffset, int count, int n, float[] scales, int h, float[] out,
                                           int o0, int outStride) {
        int p1 = p0 + pStride, p2 = p1 + pStride, p3 = p2 + pStride;
        int o1 = o0 + outStride, o2 = o1 + outStride, o3 = o2 + outStride;
        float s0 = scales[h], s1 = scales[h + 1], s2 = scales[h + 2], s3 = scales[h + 3];
        int i = 0;
        // With 32 registers (AVX-512) four vectors of the width fit: one pass over a 64-wide row.
        for (; WIDE_VALUE_TILE && i + 4 * LANES <= n; i += 4 * LANES) {
            FloatVector a00 = FloatVector.zero(FLOATS), a01 = a00, a02 = a00, a03 = a00;
            FloatVector a10 = a00, a11 = a00, a12 = a00, a13 = a00;
            FloatVector a20 = a00, a21 = a00, a22 = a00, a23 = a00;
            FloatVector a30 = a00, a31 = a00, a32 = a00, a33 = a00;
            long off = (vOffset + i) * Float.BYTES;
            for (int j = 0; j < count; j++) {
                long at = rows[rowIndex + j] * Float.BYTES + off;
                FloatVector v0 = load(v, at), v1 = load(v, at + STEP), v2 = load(v, at + 2 * STEP),
                        v3 = load(v, at + 3 * STEP);
                FloatVector w = FloatVector.broadcast(FLOATS, p[p0 + j]);
                a00 = v0.fma(w, a00);
                a01 = v1.fma(w, a01);
                a02 = v2.fma(w, a02);
                a03 = v3.fma(w, a03);
                w = FloatVector.broadcast(FLOATS, p[p1 + j]);
                a10 = v0.fma(w, a10);
                a11 = v1.fma(w, a11);
                a12 = v2.fma(w, a12);
                a13 = v3.fma(w, a13);
                w = FloatVector.broadcast(FLOATS, p[p2 + j]);
                a20 = v0.fma(w, a20);
                a21 = v1.fma(w, a21);
                a22 = v2.fma(w, a22);
                a23 = v3.fma(w, a23);
                w = FloatVector.broadcast(FLOATS, p[p3 + j]);
                a30 = v0.fma(w, a30);
                a31 = v1.fma(w, a31);
                a32 = v2.fma(w, a32);
                a33 = v3.fma(w, a33);
            }
            a00.mul(s0).intoArray(out, o0 + i);
            a01.mul(s0).intoArray(out, o0 + i + LANES);
            a02.mul(s0).intoArray(out, o0 + i + 2 * LANES);
            a03.mul(s0).intoArray(out, o0 + i + 3 * LANES);
            a10.mul(s1).intoArray(out, o1 + i);
            a11.mul(s1).intoArray(out, o1 + i + LANES);
            a12.mul(s1).intoArray(out, o1 + i + 2 * LANES);
            a13.mul(s1).intoArray(out, o1 + i + 3 * LANES);
            a20.mul(s2).intoArray(out, o2 + i);
            a21.mul(s2).intoArray(out, o2 + i + LANES);
            a22.mul(s2).intoArray(out, o2 + i + 2 * LANES);
            a23.mul(s2).intoArray(out, o2 + i + 3 * LANES);
            a30.mul(s3).intoArray(out, o3 + i);
            a31.mul(s3).intoArray(out, o3 + i + LANES);
            a32.mul(s3).intoArray(out, o3 + i + 2 * LANES);
            a33.mul(s3).intoArray(out, o3 + i + 3 * LANES);
        }
        for (; i + 2 * LANES <= n; i += 2 * LANES) {
            FloatVector a00 = FloatVector.zero(FLOATS), a01 = a00, a10 = a00, a11 = a00;
            FloatVector a20 = a00, a21 = a00, a30 = a00, a31 = a00;
            long off = (vOffset + i) * Float.BYTES;
            for (int j = 0; j < count; j++) {
                long at = rows[rowIndex + j] * Float.BYTES + off;
                FloatVector v0 = load(v, at), v1 = load(v, at + STEP);
                FloatVector w = FloatVector.broadcast(FLOATS, p[p0 + j]);
                a00 = v0.fma(w, a00);
                a01 = v1.fma(w, a01);
                w = FloatVector.broadcast(FLOATS, p[p1 + j]);
                a10 = v0.fma(w, a10);
                a11 = v1.fma(w, a11);
                w = FloatVector.broadcast(FLOATS, p[p2 + j]);
                a20 = v0.fma(w, a20);
                a21 = v1.fma(w, a21);
                w = FloatVector.broadcast(FLOATS, p[p3 + j]);
                a30 = v0.fma(w, a30);
                a31 = v1.fma(w, a31);
            }
            a00.mul(s0).intoArray(out, o0 + i);
            a01.mul(s0).intoArray(out, o0 + i + LANES);
            a10.mul(s1).intoArray(out, o1 + i);
            a11.mul(s1).intoArray(out, o1 + i + LANES);
            a20.mul(s2).intoArray(out, o2 + i);
            a21.mul(s2).intoArray(out, o2 + i + LANES);
            a30.mul(s3).intoArray(out, o3 + i);
            a31.mul(s3).intoArray(out, o3 + i + LANES);
        }
        for (; i + LANES <= n; i += LANES) {
            FloatVector a0 = FloatVector.zero(FLOATS), a1 = a0, a2 = a0, a3 = a0;
            long off = (vOffset + i) * Float.BYTES;
            for (int j = 0; j < count; j++) {
                FloatVector v0 = load(v, rows[rowIndex + j] * Float.BYTES + off);
                a0 = v0.fma(FloatVector.broadcast(FLOATS, p[p0 + j]), a0);
                a1 = v0.fma(FloatVector.broadcast(FLOATS, p[p1 + j]), a1);
                a2 = v0.fma(FloatVector.broadcast(FLOATS, p[p2 + j]), a2);
                a3 = v0.fma(FloatVector.broadcast(FLOATS, p[p3 + j]), a3);
            }
            a0.mul(s0).intoArray(out, o0 + i);
            a1.mul(s1).intoArray(out, o1 + i);
            a2.mul(s2).intoArray(out, o2 + i);
            a3.mul(s3).intoArray(out, o3 + i);
        }
        for (; i < n; i++) {
            out[o0 + i] = weightedElement(p, p0, v, rows, rowIndex, vOffset + i, count) * s0;
            out[o1 + i] = weightedElement(p, p1, v, rows, rowIndex, vOffset + i, count) * s1;
            out[o2 + i] = weightedElement(p, p2, v, rows, rowIndex, vOffset + i, count) * s2;
            out[o3 + i] = weightedElement(p, p3, v, rows, rowIndex, vOffset + i, count) * s3;
        }
    }

    private static void weightedRowsOfOne(float[] p, int p0, MemorySegment v, long[] rows, int rowIndex, long vOffset, int count,
                                          int n, float scale, float[] out, int o0) {
        int i = 0;
        for (; i + 2 * LANES <= n; i += 2 * LANES) {
            FloatVector a0 = FloatVector.zero(FLOATS), a1 = a0;
            long off = (vOffset + i) * Float.BYTES;
            for (int j = 0; j < count; j++) {
                long at = rows[rowIndex + j] * Float.BYTES + off;
                FloatVector w = FloatVector.broadcast(FLOATS, p[p0 + j]);
                a0 = load(v, at).fma(w, a0);
                a1 = load(v, at + STEP).fma(w, a1);
            }
            a0.mul(scale).intoArray(out, o0 + i);
            a1.mul(scale).intoArray(out, o0 + i + LANES);
        }
        for (; i + LANES <= n; i += LANES) {
            FloatVector a0 = FloatVector.zero(FLOATS);
            long off = (vOffset + i) * Float.BYTES;
            for (int j = 0; j < count; j++) {
                a0 = load(v, rows[rowIndex + j] * Float.BYTES + off).fma(FloatVector.broadcast(FLOATS, p[p0 + j]), a0);
            }
            a0.mul(scale).intoArray(out, o0 + i);
        }
        for (; i < n; i++) {
            out[o0 + i] = weightedElement(p, p0, v, rows, rowIndex, vOffset + i, count) * scale;
        }
    }

    /** {@code Σ_j p[p0 + j] · v[rows[rowIndex + j] + index]}, in order: one element of the value width's tail. */
    private static float weightedElement(float[] p, int p0, MemorySegment v, long[] rows, int rowIndex, long index, int count) {
        float sum = 0f;
        for (int j = 0; j < count; j++) {
            sum += p[p0 + j] * Elements.getFloat(v, rows[rowIndex + j] + index);
        }
        return sum;
    }

    @Override
    public float sum(float[] x, int index, int n) {
        FloatVector s0 = FloatVector.zero(FLOATS), s1 = s0;
        int i = 0;
        for (; i <= n - 2 * LANES; i += 2 * LANES) {
            s0 = s0.add(floats(x, index + i));
            s1 = s1.add(floats(x, index + i + LANES));
        }
        for (; i <= n - LANES; i += LANES) {
            s0 = s0.add(floats(x, index + i));
        }
        float sum = s0.add(s1).reduceLanes(VectorOperators.ADD);
        for (; i < n; i++) {
            sum += x[index + i];
        }
        return sum;
    }

    @Override
    public float sumOfSquares(float[] x, int index, int n, float center) {
        FloatVector s0 = FloatVector.zero(FLOATS), s1 = s0;
        int i = 0;
        for (; i <= n - 2 * LANES; i += 2 * LANES) {
            FloatVector d0 = floats(x, index + i).sub(center);
            FloatVector d1 = floats(x, index + i + LANES).sub(center);
            s0 = d0.fma(d0, s0);
            s1 = d1.fma(d1, s1);
        }
        for (; i <= n - LANES; i += LANES) {
            FloatVector d = floats(x, index + i).sub(center);
            s0 = d.fma(d, s0);
        }
        float sum = s0.add(s1).reduceLanes(VectorOperators.ADD);
        for (; i < n; i++) {
            float d = x[index + i] - center;
            sum += d * d;
        }
        return sum;
    }

    @Override
    public void normalize(float[] x, int xIndex, float center, float scale, float[] weight, float[] bias,
                          float[] out, int outIndex, int n) {
        int i = 0;
        for (; i <= n - LANES; i += LANES) {
            FloatVector v = floats(x, xIndex + i).sub(center).mul(scale).mul(floats(weight, i));
            if (bias != null) {
                v = v.add(floats(bias, i));
            }
            v.intoArray(out, outIndex + i);
        }
        for (; i < n; i++) {
            float v = (x[xIndex + i] - center) * scale * weight[i];
            out[outIndex + i] = bias == null ? v : v + bias[i];
        }
    }

    @Override
    public void add(float[] a, int aIndex, float[] b, int bIndex, float[] out, int outIndex, int n) {
        int i = 0;
        for (; i <= n - LANES; i += LANES) {
            floats(a, aIndex + i).add(floats(b, bIndex + i)).intoArray(out, outIndex + i);
        }
        for (; i < n; i++) {
            out[outIndex + i] = a[aIndex + i] + b[bIndex + i];
        }
    }

    @Override
    public void siluMul(float[] gate, int gateIndex, float[] up, int upIndex, float[] out, int outIndex, int n) {
        int i = 0;
        for (; i <= n - LANES; i += LANES) {
            FloatVector g = floats(gate, gateIndex + i);
            FloatVector silu = g.div(g.neg().lanewise(VectorOperators.EXP).add(1f));
            silu.mul(floats(up, upIndex + i)).intoArray(out, outIndex + i);
        }
        for (; i < n; i++) {
            float g = gate[gateIndex + i];
            out[outIndex + i] = g / (1f + (float) Math.exp(-g)) * up[upIndex + i];
        }
    }

    /** GELU (BERT's activation) on vectors; the others, rarer, element by element. */
    @Override
    public void activation(Activation fn, float[] x, int xIndex, float[] out, int outIndex, int n) {
        int i = 0;
        if (fn == Activation.GELU) {
            for (; i <= n - LANES; i += LANES) {
                FloatVector v = floats(x, xIndex + i);
                v.mul(0.5f).mul(erf(v.mul(GeluApproximation.INVERSE_SQRT2)).add(1f)).intoArray(out, outIndex + i);
            }
        }
        for (; i < n; i++) {
            out[outIndex + i] = PointwiseKernels.apply(fn, x[xIndex + i]);
        }
    }

    /** {@link GeluApproximation#erf} lane by lane. */
    private static FloatVector erf(FloatVector x) {
        FloatVector a = x.abs();
        FloatVector t = FloatVector.broadcast(FLOATS, 1f).div(a.fma(GeluApproximation.P, 1f));
        FloatVector poly = t.fma(GeluApproximation.A5, GeluApproximation.A4).mul(t).add(GeluApproximation.A3)
                .mul(t).add(GeluApproximation.A2).mul(t).add(GeluApproximation.A1).mul(t);
        FloatVector y = poly.mul(a.mul(a).neg().lanewise(VectorOperators.EXP)).neg().add(1f);
        return y.neg().blend(y, x.compare(VectorOperators.GE, 0f));
    }

    @Override
    public float max(float[] a, int index, int n) {
        FloatVector m = FloatVector.broadcast(FLOATS, Float.NEGATIVE_INFINITY);
        int i = 0;
        for (; i <= n - LANES; i += LANES) {
            m = m.max(floats(a, index + i));
        }
        float max = m.reduceLanes(VectorOperators.MAX);
        for (; i < n; i++) {
            max = Math.max(max, a[index + i]);
        }
        return max;
    }

    /**
     * Two vector passes over the row: its maximum, then the first element equal to it, which is
     * where the plain scan ends up. A NaN makes the maximum NaN, which equals nothing; the plain
     * scan then decides (as it does for a row of negative infinities and NaNs).
     */
    @Override
    public int argmax(float[] a, int index, int n) {
        float max = max(a, index, n);
        if (max != max) {
            return ScalarLoops.firstGreatest(a, index, n);
        }
        int i = 0;
        for (; i <= n - LANES; i += LANES) {
            VectorMask<Float> equal = floats(a, index + i).compare(VectorOperators.EQ, max);
            if (equal.anyTrue()) {
                return i + equal.firstTrue();
            }
        }
        for (; i < n; i++) {
            if (a[index + i] == max) {
                return i;
            }
        }
        return ScalarLoops.firstGreatest(a, index, n);
    }

    @Override
    public float expShiftedAndSum(float[] a, int index, int n, float shift) {
        FloatVector s = FloatVector.zero(FLOATS);
        int i = 0;
        for (; i <= n - LANES; i += LANES) {
            FloatVector e = floats(a, index + i).sub(shift).lanewise(VectorOperators.EXP);
            e.intoArray(a, index + i);
            s = s.add(e);
        }
        float sum = s.reduceLanes(VectorOperators.ADD);
        for (; i < n; i++) {
            a[index + i] = (float) Math.exp(a[index + i] - shift);
            sum += a[index + i];
        }
        return sum;
    }

    @Override
    public void storeScaled(float[] y, int yIndex, float scale, float[] out, int outIndex, int n) {
        int i = 0;
        for (; i <= n - LANES; i += LANES) {
            floats(y, yIndex + i).mul(scale).intoArray(out, outIndex + i);
        }
        for (; i < n; i++) {
            out[outIndex + i] = y[yIndex + i] * scale;
        }
    }
}
