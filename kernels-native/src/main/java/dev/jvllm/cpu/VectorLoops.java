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

    private final VectorF32Weights f32 = new VectorF32Weights();
    private final VectorBf16Weights bf16 = new VectorBf16Weights();
    private final VectorF16Weights f16 = new VectorF16Weights();
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
            case F32 -> f32;
            case BF16 -> bf16;
            case F16 -> f16;
            default -> throw new IllegalArgumentException("no weight loops for " + type);
        };
    }

    @Override
    public float dot(MemorySegment k, long kIndex, float[] q, int qIndex, int n) {
        return f32.dot(k, kIndex, q, qIndex, n);
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
