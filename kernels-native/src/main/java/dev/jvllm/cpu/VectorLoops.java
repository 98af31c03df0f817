package dev.jvllm.cpu;

import dev.jvllm.weights.DType;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;

import java.lang.foreign.MemorySegment;

import static dev.jvllm.cpu.Elements.getFloat;
import static dev.jvllm.cpu.Elements.setFloat;
import static dev.jvllm.cpu.VectorShapes.FLOATS;
import static dev.jvllm.cpu.VectorShapes.LANES;
import static dev.jvllm.cpu.VectorShapes.floats;
import static dev.jvllm.cpu.VectorShapes.store;

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

    @Override
    public String description() {
        return VectorShapes.describe();
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
    public float dot(MemorySegment a, long aIndex, MemorySegment b, long bIndex, int n) {
        return f32.dot(a, aIndex, b, bIndex, n);
    }

    @Override
    public void addScaled(float alpha, MemorySegment x, long xIndex, float[] y, int n) {
        int i = 0;
        for (; i <= n - LANES; i += LANES) {
            floats(x, xIndex + i).fma(FloatVector.broadcast(FLOATS, alpha), FloatVector.fromArray(FLOATS, y, i)).intoArray(y, i);
        }
        for (; i < n; i++) {
            y[i] += alpha * getFloat(x, xIndex + i);
        }
    }

    @Override
    public float sum(MemorySegment x, long index, int n) {
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
            sum += getFloat(x, index + i);
        }
        return sum;
    }

    @Override
    public float sumOfSquares(MemorySegment x, long index, int n, float center) {
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
            float d = getFloat(x, index + i) - center;
            sum += d * d;
        }
        return sum;
    }

    @Override
    public void normalize(MemorySegment x, long xIndex, float center, float scale, float[] weight, float[] bias,
                          MemorySegment out, long outIndex, int n) {
        int i = 0;
        for (; i <= n - LANES; i += LANES) {
            FloatVector v = floats(x, xIndex + i).sub(center).mul(scale).mul(FloatVector.fromArray(FLOATS, weight, i));
            if (bias != null) {
                v = v.add(FloatVector.fromArray(FLOATS, bias, i));
            }
            store(v, out, outIndex + i);
        }
        for (; i < n; i++) {
            float v = (getFloat(x, xIndex + i) - center) * scale * weight[i];
            setFloat(out, outIndex + i, bias == null ? v : v + bias[i]);
        }
    }

    @Override
    public void add(MemorySegment a, long aIndex, MemorySegment b, long bIndex, MemorySegment out, long outIndex, int n) {
        int i = 0;
        for (; i <= n - LANES; i += LANES) {
            store(floats(a, aIndex + i).add(floats(b, bIndex + i)), out, outIndex + i);
        }
        for (; i < n; i++) {
            setFloat(out, outIndex + i, getFloat(a, aIndex + i) + getFloat(b, bIndex + i));
        }
    }

    @Override
    public void siluMul(MemorySegment gate, long gateIndex, MemorySegment up, long upIndex, MemorySegment out,
                        long outIndex, int n) {
        int i = 0;
        for (; i <= n - LANES; i += LANES) {
            FloatVector g = floats(gate, gateIndex + i);
            FloatVector silu = g.div(g.neg().lanewise(VectorOperators.EXP).add(1f));
            store(silu.mul(floats(up, upIndex + i)), out, outIndex + i);
        }
        for (; i < n; i++) {
            float g = getFloat(gate, gateIndex + i);
            setFloat(out, outIndex + i, g / (1f + (float) Math.exp(-g)) * getFloat(up, upIndex + i));
        }
    }

    @Override
    public float max(float[] a, int n) {
        FloatVector m = FloatVector.broadcast(FLOATS, Float.NEGATIVE_INFINITY);
        int i = 0;
        for (; i <= n - LANES; i += LANES) {
            m = m.max(FloatVector.fromArray(FLOATS, a, i));
        }
        float max = m.reduceLanes(VectorOperators.MAX);
        for (; i < n; i++) {
            max = Math.max(max, a[i]);
        }
        return max;
    }

    @Override
    public float expShiftedAndSum(float[] a, int n, float shift) {
        FloatVector s = FloatVector.zero(FLOATS);
        int i = 0;
        for (; i <= n - LANES; i += LANES) {
            FloatVector e = FloatVector.fromArray(FLOATS, a, i).sub(shift).lanewise(VectorOperators.EXP);
            e.intoArray(a, i);
            s = s.add(e);
        }
        float sum = s.reduceLanes(VectorOperators.ADD);
        for (; i < n; i++) {
            a[i] = (float) Math.exp(a[i] - shift);
            sum += a[i];
        }
        return sum;
    }

    @Override
    public void storeScaled(float[] y, float scale, MemorySegment out, long outIndex, int n) {
        int i = 0;
        for (; i <= n - LANES; i += LANES) {
            store(FloatVector.fromArray(FLOATS, y, i).mul(scale), out, outIndex + i);
        }
        for (; i < n; i++) {
            setFloat(out, outIndex + i, y[i] * scale);
        }
    }
}
