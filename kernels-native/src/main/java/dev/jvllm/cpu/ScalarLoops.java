package dev.jvllm.cpu;

import dev.jvllm.spi.Activation;
import dev.jvllm.weights.DType;

import java.lang.foreign.MemorySegment;

import static dev.jvllm.cpu.Elements.getFloat;

/**
 * Plain-Java inner loops: the fallback when the Vector API module is absent, and the
 * straightforward statement of what each loop computes.
 */
final class ScalarLoops implements InnerLoops {

    private final String reason;
    private final WeightLoops f32 = new ScalarWeightLoops(DType.F32);
    private final WeightLoops bf16 = new ScalarWeightLoops(DType.BF16);
    private final WeightLoops f16 = new ScalarWeightLoops(DType.F16);
    private final PanelLoops panels = new ScalarPanelLoops();

    ScalarLoops(String reason) {
        this.reason = reason;
    }

    @Override
    public String description() {
        return "scalar loops (" + reason + ")";
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
        for (int i = 0; i < n; i++) {
            y[i] += alpha * getFloat(v, vIndex + i);
        }
    }

    @Override
    public void rowDots(MemorySegment k, long[] rows, int rowIndex, long kOffset, int count, float[] q, int qIndex, int qStride,
                        int heads, int n, float[] out, int outIndex, int outStride) {
        for (int h = 0; h < heads; h++) {
            for (int j = 0; j < count; j++) {
                out[outIndex + h * outStride + j] = dot(k, rows[rowIndex + j] + kOffset, q, qIndex + h * qStride, n);
            }
        }
    }

    @Override
    public void weightedRows(float[] p, int pIndex, int pStride, int heads, MemorySegment v, long[] rows, int rowIndex,
                             long vOffset, int count, int n, float[] scales, float[] out, int outIndex,
                             int outStride) {
        for (int h = 0; h < heads; h++) {
            int o = outIndex + h * outStride;
            for (int i = 0; i < n; i++) {
                float sum = 0f;
                for (int j = 0; j < count; j++) {
                    sum += p[pIndex + h * pStride + j] * getFloat(v, rows[rowIndex + j] + vOffset + i);
                }
                out[o + i] = sum * scales[h];
            }
        }
    }

    @Override
    public float sum(float[] x, int index, int n) {
        float sum = 0;
        for (int i = 0; i < n; i++) {
            sum += x[index + i];
        }
        return sum;
    }

    @Override
    public float sumOfSquares(float[] x, int index, int n, float center) {
        float sum = 0;
        for (int i = 0; i < n; i++) {
            float d = x[index + i] - center;
            sum += d * d;
        }
        return sum;
    }

    @Override
    public void normalize(float[] x, int xIndex, float center, float scale, float[] weight, float[] bias,
                          float[] out, int outIndex, int n) {
        for (int i = 0; i < n; i++) {
            float v = (x[xIndex + i] - center) * scale * weight[i];
            out[outIndex + i] = bias == null ? v : v + bias[i];
        }
    }

    @Override
    public void add(float[] a, int aIndex, float[] b, int bIndex, float[] out, int outIndex, int n) {
        for (int i = 0; i < n; i++) {
            out[outIndex + i] = a[aIndex + i] + b[bIndex + i];
        }
    }

    @Override
    public void siluMul(float[] gate, int gateIndex, float[] up, int upIndex, float[] out, int outIndex, int n) {
        for (int i = 0; i < n; i++) {
            float g = gate[gateIndex + i];
            out[outIndex + i] = g / (1f + (float) Math.exp(-g)) * up[upIndex + i];
        }
    }

    @Override
    public void activation(Activation fn, float[] x, int xIndex, float[] out, int outIndex, int n) {
        for (int i = 0; i < n; i++) {
            out[outIndex + i] = PointwiseKernels.apply(fn, x[xIndex + i]);
        }
    }

    @Override
    public float max(float[] a, int index, int n) {
        float max = Float.NEGATIVE_INFINITY;
        for (int i = index; i < index + n; i++) {
            max = Math.max(max, a[i]);
        }
        return max;
    }

    @Override
    public int argmax(float[] a, int index, int n) {
        return firstGreatest(a, index, n);
    }

    /** The plain scan {@link InnerLoops#argmax} describes. */
    static int firstGreatest(float[] a, int index, int n) {
        int best = 0;
        float bestValue = Float.NEGATIVE_INFINITY;
        for (int i = 0; i < n; i++) {
            float v = a[index + i];
            if (v > bestValue) {
                bestValue = v;
                best = i;
            }
        }
        return best;
    }

    @Override
    public float expShiftedAndSum(float[] a, int index, int n, float shift) {
        float sum = 0;
        for (int i = index; i < index + n; i++) {
            a[i] = (float) Math.exp(a[i] - shift);
            sum += a[i];
        }
        return sum;
    }

    @Override
    public void storeScaled(float[] y, int yIndex, float scale, float[] out, int outIndex, int n) {
        for (int i = 0; i < n; i++) {
            out[outIndex + i] = y[yIndex + i] * scale;
        }
    }

    /** Weight loops for any element type, reading each element through {@link Elements#get}. */
    private record ScalarWeightLoops(DType type) implements WeightLoops {

        @Override
        public float dot(MemorySegment w, long wIndex, float[] x, int xIndex, int n) {
            float sum = 0;
            for (int i = 0; i < n; i++) {
                sum += Elements.get(type, w, wIndex + i) * x[xIndex + i];
            }
            return sum;
        }

        @Override
        public void dotEightRows(MemorySegment w, long wIndex, long rowStride, float[] x, int xIndex, int n,
                                 float[] dots) {
            for (int r = 0; r < 8; r++) {
                dots[r] = dot(w, wIndex + r * rowStride, x, xIndex, n);
            }
        }

        @Override
        public void dotTwoRowsFourTokens(MemorySegment w, long wIndex, long rowStride, float[] x, int x0, int x1,
                                         int x2, int x3, int n, float[] dots) {
            float a0 = 0, a1 = 0, a2 = 0, a3 = 0, b0 = 0, b1 = 0, b2 = 0, b3 = 0;
            for (int i = 0; i < n; i++) {
                float wa = Elements.get(type, w, wIndex + i);
                float wb = Elements.get(type, w, wIndex + rowStride + i);
                a0 += wa * x[x0 + i];
                a1 += wa * x[x1 + i];
                a2 += wa * x[x2 + i];
                a3 += wa * x[x3 + i];
                b0 += wb * x[x0 + i];
                b1 += wb * x[x1 + i];
                b2 += wb * x[x2 + i];
                b3 += wb * x[x3 + i];
            }
            dots[0] = a0;
            dots[1] = a1;
            dots[2] = a2;
            dots[3] = a3;
            dots[4] = b0;
            dots[5] = b1;
            dots[6] = b2;
            dots[7] = b3;
        }

        @Override
        public void widen(MemorySegment w, long wIndex, float[] dst, int dstIndex, int n) {
            for (int i = 0; i < n; i++) {
                dst[dstIndex + i] = Elements.get(type, w, wIndex + i);
            }
        }
    }
}
