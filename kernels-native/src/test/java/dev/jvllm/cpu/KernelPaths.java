package dev.jvllm.cpu;

import dev.jvllm.weights.DType;
import dev.jvllm.weights.WeightTensor;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.SplittableRandom;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * Test support: backends on both inner-loop paths, random data, weights in each checkpoint type
 * with their exact values for references, and tolerance checks.
 */
final class KernelPaths {

    /** f32 arithmetic error allowed, relative to the magnitude of the terms summed. */
    static final double TOLERANCE = 1e-5;

    private KernelPaths() {
    }

    /** "vector" and "scalar": the two implementations every kernel test runs on. */
    static Stream<String> paths() {
        return Stream.of("vector", "scalar");
    }

    /** A backend of three threads (more than the cores of small machines) on the named path. */
    static CpuBackend backend(String path) {
        InnerLoops loops = switch (path) {
            case "vector" -> InnerLoops.Selection.loadVectorLoops();
            case "scalar" -> new ScalarLoops("test");
            default -> throw new IllegalArgumentException(path);
        };
        assertTrue(loops.description().startsWith(path.equals("vector") ? "Vector API" : "scalar"),
                "expected the " + path + " path, got " + loops.description());
        return new CpuBackend(3, loops);
    }

    static float[] gaussian(SplittableRandom random, int n) {
        float[] values = new float[n];
        for (int i = 0; i < n; i++) {
            values[i] = (float) random.nextGaussian();
        }
        return values;
    }

    /** A weight stored in {@code type} at an odd address, and the exact values it holds. */
    record TestWeight(WeightTensor tensor, double[] values) {
    }

    static TestWeight weight(String name, DType type, float[] values, long... shape) {
        // One spare byte in front puts the data at an odd address, as a checkpoint slice may be.
        MemorySegment data = Arena.ofAuto().allocate((long) values.length * type.byteSize() + 1, 64)
                .asSlice(1, (long) values.length * type.byteSize());
        double[] exact = new double[values.length];
        for (int i = 0; i < values.length; i++) {
            switch (type) {
                case F32 -> {
                    data.set(Elements.FLOAT, 4L * i, values[i]);
                    exact[i] = values[i];
                }
                case BF16 -> {
                    short bits = Elements.floatToBf16(values[i]);
                    data.set(Elements.SHORT, 2L * i, bits);
                    exact[i] = Elements.bf16ToFloat(bits);
                }
                case F16 -> {
                    short bits = Float.floatToFloat16(values[i]);
                    data.set(Elements.SHORT, 2L * i, bits);
                    exact[i] = Float.float16ToFloat(bits);
                }
                default -> throw new IllegalArgumentException(type.toString());
            }
        }
        return new TestWeight(new WeightTensor(name, type, shape, data, Path.of("test.safetensors")), exact);
    }

    /**
     * Asserts {@code |actual[i] - expected[i]| <= TOLERANCE * scale[i] + 1e-6} for every i, where
     * scale is the magnitude the result was accumulated from (e.g. {@code Σ|w·x|}).
     */
    static void assertClose(double[] expected, float[] actual, double[] scale, String what) {
        if (expected.length != actual.length) {
            fail(what + ": " + actual.length + " values, expected " + expected.length);
        }
        for (int i = 0; i < expected.length; i++) {
            double allowed = TOLERANCE * scale[i] + 1e-6;
            if (!(Math.abs(actual[i] - expected[i]) <= allowed)) {
                fail(what + ": element " + i + " is " + actual[i] + ", expected " + expected[i] + " ± " + allowed);
            }
        }
    }

    /** {@link #assertClose} with each element's own magnitude (at least 1) as its scale. */
    static void assertClose(double[] expected, float[] actual, String what) {
        double[] scale = new double[expected.length];
        for (int i = 0; i < scale.length; i++) {
            scale[i] = Math.max(1, Math.abs(expected[i]));
        }
        assertClose(expected, actual, scale, what);
    }
}
