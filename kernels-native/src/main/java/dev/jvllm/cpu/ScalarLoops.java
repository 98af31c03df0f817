package dev.jvllm.cpu;

import dev.jvllm.weights.DType;

import java.lang.foreign.MemorySegment;

import static dev.jvllm.cpu.Elements.getFloat;
import static dev.jvllm.cpu.Elements.setFloat;

/**
 * Plain-Java inner loops: the fallback when the Vector API module is absent, and the
 * straightforward statement of what each loop computes.
 */
final class ScalarLoops implements InnerLoops {

    private final String reason;
    private final WeightLoops f32 = new ScalarWeightLoops(DType.F32);
    private final WeightLoops bf16 = new ScalarWeightLoops(DType.BF16);
    private final WeightLoops f16 = new ScalarWeightLoops(DType.F16);

    ScalarLoops(String reason) {
        this.reason = reason;
    }

    @Override
    public String description() {
        return "scalar loops (" + reason + ")";
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
        for (int i = 0; i < n; i++) {
            y[i] += alpha * getFloat(x, xIndex + i);
        }
    }

    @Override
    public float sum(MemorySegment x, long index, int n) {
        float sum = 0;
        for (int i = 0; i < n; i++) {
            sum += getFloat(x, index + i);
        }
        return sum;
    }

    @Override
    public float sumOfSquares(MemorySegment x, long index, int n, float center) {
        float sum = 0;
        for (int i = 0; i < n; i++) {
            float d = getFloat(x, index + i) - center;
            sum += d * d;
        }
        return sum;
    }

    @Override
    public void normalize(MemorySegment x, long xIndex, float center, float scale, float[] weight, float[] bias,
                          MemorySegment out, long outIndex, int n) {
        for (int i = 0; i < n; i++) {
            float v = (getFloat(x, xIndex + i) - center) * scale * weight[i];
            setFloat(out, outIndex + i, bias == null ? v : v + bias[i]);
        }
    }

    @Override
    public void add(MemorySegment a, long aIndex, MemorySegment b, long bIndex, MemorySegment out, long outIndex, int n) {
        for (int i = 0; i < n; i++) {
            setFloat(out, outIndex + i, getFloat(a, aIndex + i) + getFloat(b, bIndex + i));
        }
    }

    @Override
    public void siluMul(MemorySegment gate, long gateIndex, MemorySegment up, long upIndex, MemorySegment out,
                        long outIndex, int n) {
        for (int i = 0; i < n; i++) {
            float g = getFloat(gate, gateIndex + i);
            setFloat(out, outIndex + i, g / (1f + (float) Math.exp(-g)) * getFloat(up, upIndex + i));
        }
    }

    @Override
    public float max(float[] a, int n) {
        float max = Float.NEGATIVE_INFINITY;
        for (int i = 0; i < n; i++) {
            max = Math.max(max, a[i]);
        }
        return max;
    }

    @Override
    public float expShiftedAndSum(float[] a, int n, float shift) {
        float sum = 0;
        for (int i = 0; i < n; i++) {
            a[i] = (float) Math.exp(a[i] - shift);
            sum += a[i];
        }
        return sum;
    }

    @Override
    public void storeScaled(float[] y, float scale, MemorySegment out, long outIndex, int n) {
        for (int i = 0; i < n; i++) {
            setFloat(out, outIndex + i, y[i] * scale);
        }
    }

    /** Weight loops for any element type, reading each element through {@link Elements#get}. */
    private record ScalarWeightLoops(DType type) implements WeightLoops {

        @Override
        public float dot(MemorySegment w, long wIndex, MemorySegment x, long xIndex, int n) {
            float sum = 0;
            for (int i = 0; i < n; i++) {
                sum += Elements.get(type, w, wIndex + i) * getFloat(x, xIndex + i);
            }
            return sum;
        }

        @Override
        public void dotEightRows(MemorySegment w, long wIndex, long rowStride, MemorySegment x, long xIndex, int n,
                                 float[] dots) {
            for (int r = 0; r < 8; r++) {
                dots[r] = dot(w, wIndex + r * rowStride, x, xIndex, n);
            }
        }

        @Override
        public void dotFourTokens(MemorySegment w, long wIndex, MemorySegment x, long x0, long x1, long x2, long x3,
                                  int n, float[] dots) {
            float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
            for (int i = 0; i < n; i++) {
                float wi = Elements.get(type, w, wIndex + i);
                s0 += wi * getFloat(x, x0 + i);
                s1 += wi * getFloat(x, x1 + i);
                s2 += wi * getFloat(x, x2 + i);
                s3 += wi * getFloat(x, x3 + i);
            }
            dots[0] = s0;
            dots[1] = s1;
            dots[2] = s2;
            dots[3] = s3;
        }

        @Override
        public void widen(MemorySegment w, long wIndex, float[] dst, int dstIndex, int n) {
            for (int i = 0; i < n; i++) {
                dst[dstIndex + i] = Elements.get(type, w, wIndex + i);
            }
        }
    }
}
