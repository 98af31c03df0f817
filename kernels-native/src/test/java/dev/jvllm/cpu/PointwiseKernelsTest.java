package dev.jvllm.cpu;

import dev.jvllm.spi.Activation;
import dev.jvllm.spi.Backend;
import dev.jvllm.spi.BackendOptions;
import dev.jvllm.spi.Tensor;
import dev.jvllm.weights.DType;
import dev.jvllm.weights.WeightTensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

class PointwiseKernelsTest {

    private final Backend backend = new CpuBackendProvider().create(new BackendOptions(2));

    private static float[] random(int n, long seed) {
        Random r = new Random(seed);
        float[] v = new float[n];
        for (int i = 0; i < n; i++) v[i] = (float) (r.nextGaussian() * 3);
        return v;
    }

    @ParameterizedTest
    @EnumSource(Activation.class)
    void activationsFollowTheirDefinition(Activation fn) {
        float[] x = random(3 * 37, 1);
        float[] up = random(3 * 37, 2);
        Tensor out = backend.allocate(3, 37);
        backend.activation(fn, backend.constant(x, 3, 37), out);
        float[] plain = backend.toFloatArray(out);
        backend.gatedActivation(fn, backend.constant(x, 3, 37), backend.constant(up, 3, 37), out);
        float[] gated = backend.toFloatArray(out);
        for (int i = 0; i < x.length; i++) {
            double expected = fn.apply(x[i]);
            assertEquals(expected, plain[i], 1e-5 * (1 + Math.abs(expected)), fn + "(" + x[i] + ")");
            assertEquals(expected * up[i], gated[i], 1e-5 * (1 + Math.abs(expected * up[i])), fn + " gated");
        }
    }

    @Test
    void erfMatchesKnownValues() {
        assertEquals(0.0, Activation.erf(0), 1e-15);
        assertEquals(0.5204998778130465, Activation.erf(0.5), 1e-12);
        assertEquals(0.9953222650189527, Activation.erf(2.0), 1e-12);
        assertEquals(-0.9999779095030014, Activation.erf(-3.0), 2e-7);
    }

    @Test
    void scaleSoftcapAndClamp() {
        float[] x = random(50, 3);
        Tensor out = backend.allocate(1, 50);
        backend.scale(backend.constant(x, 1, 50), 0.5f, out);
        float[] scaled = backend.toFloatArray(out);
        backend.softcap(backend.constant(x, 1, 50), 2f, out);
        float[] capped = backend.toFloatArray(out);
        backend.clamp(backend.constant(x, 1, 50), 1.5f, out);
        float[] clamped = backend.toFloatArray(out);
        for (int i = 0; i < x.length; i++) {
            assertEquals(x[i] * 0.5f, scaled[i], 1e-6);
            assertEquals(2 * Math.tanh(x[i] / 2), capped[i], 1e-6);
            assertEquals(Math.max(-1.5f, Math.min(1.5f, x[i])), clamped[i]);
        }
    }

    @Test
    void transposedWeightTurnsConv1dLayoutIntoOutByIn() {
        float[] inByOut = {1, 2, 3, 4, 5, 6}; // [in=2, out=3]
        MemorySegment bytes = MemorySegment.ofArray(new byte[24]);
        MemorySegment.copy(MemorySegment.ofArray(inByOut), 0, bytes, 0, 24);
        Tensor w = backend.transposedWeight(new WeightTensor("c_attn.weight", DType.F32, new long[]{2, 3}, bytes, Path.of("x")));
        assertEquals(3, w.rows());
        assertEquals(2, w.cols());
        Tensor y = backend.allocate(1, 3);
        backend.linear(backend.constant(new float[]{1, 10}, 1, 2), w, null, y);
        assertArrayEquals(new float[]{41, 52, 63}, backend.toFloatArray(y), 1e-6f);
    }
}
