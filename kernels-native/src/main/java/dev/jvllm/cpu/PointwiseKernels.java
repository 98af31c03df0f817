package dev.jvllm.cpu;

import dev.jvllm.JvllmException;
import dev.jvllm.spi.Activation;
import dev.jvllm.weights.DType;
import dev.jvllm.weights.WeightTensor;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * The less frequent elementwise kernels (gated activations other than SiLU×up, scaling, soft-capping)
 * and the transposed-weight copy: scalar loops over float32 activations, parallelized by the caller.
 */
final class PointwiseKernels {

    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED;

    private PointwiseKernels() {
    }

    static float apply(Activation fn, float x) {
        return switch (fn) {
            case SILU -> x / (1f + (float) Math.exp(-x));
            case GELU -> GeluApproximation.gelu(x);
            case GELU_TANH -> 0.5f * x * (1f + (float) Math.tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)));
            case QUICK_GELU -> x / (1f + (float) Math.exp(-1.702 * x));
            case RELU -> Math.max(x, 0f);
        };
    }

    static void gated(Activation fn, CpuTensor gate, CpuTensor up, CpuTensor out, int first, int end) {
        float[] g = gate.floats(), u = up.floats(), o = out.floats();
        int gi = gate.offset() + first, ui = up.offset() + first, oi = out.offset() + first;
        for (int i = first; i < end; i++) {
            o[oi++] = apply(fn, g[gi++]) * u[ui++];
        }
    }

    static void scale(CpuTensor x, float factor, CpuTensor out, int first, int end) {
        float[] in = x.floats(), o = out.floats();
        for (int i = first, xi = x.offset() + first, oi = out.offset() + first; i < end; i++) {
            o[oi++] = in[xi++] * factor;
        }
    }

    static void clamp(CpuTensor x, float limit, CpuTensor out, int first, int end) {
        float[] in = x.floats(), o = out.floats();
        for (int i = first, xi = x.offset() + first, oi = out.offset() + first; i < end; i++) {
            o[oi++] = Math.clamp(in[xi++], -limit, limit);
        }
    }

    static void softcap(CpuTensor x, float cap, CpuTensor out, int first, int end) {
        float[] in = x.floats(), o = out.floats();
        for (int i = first, xi = x.offset() + first, oi = out.offset() + first; i < end; i++) {
            o[oi++] = cap * (float) Math.tanh(in[xi++] / cap);
        }
    }

    /** A [in, out] checkpoint matrix copied into a heap [out, in] float32 weight. */
    static CpuTensor transposed(WeightTensor source) {
        if (source.rank() != 2) {
            throw new JvllmException("tensor '" + source.name() + "' must be 2-dimensional to be transposed");
        }
        long in = source.dim(0), out = source.dim(1);
        if (in * out > Integer.MAX_VALUE) {
            throw new JvllmException("tensor '" + source.name() + "' is too large to transpose on the CPU");
        }
        float[] values = new float[(int) (in * out)];
        MemorySegment data = source.data();
        for (long i = 0; i < in; i++) {
            for (long o = 0; o < out; o++) {
                values[(int) (o * in + i)] = read(data, source.dtype(), i * out + o, source.name());
            }
        }
        return CpuTensor.ofFloats(values, 0, (int) out, (int) in, source.name() + "ᵀ");
    }

    private static float read(MemorySegment data, DType type, long index, String name) {
        return switch (type) {
            case F32 -> data.getAtIndex(F32, index);
            case BF16 -> Float.intBitsToFloat(data.getAtIndex(ValueLayout.JAVA_SHORT_UNALIGNED, index) << 16);
            case F16 -> Float.float16ToFloat(data.getAtIndex(ValueLayout.JAVA_SHORT_UNALIGNED, index));
            default -> throw new JvllmException("tensor '" + name + "' is " + type
                    + "; the CPU backend reads F32, BF16 and F16 weights");
        };
    }
}
