package dev.jvllm.cuda;

import dev.jvllm.engine.ForwardBatch;
import dev.jvllm.spi.Backend;
import dev.jvllm.spi.Tensor;
import dev.jvllm.weights.DType;
import dev.jvllm.weights.WeightTensor;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/** Seeded data, batches and comparisons shared by the CUDA-against-CPU kernel tests. */
final class CudaTestData {

    private CudaTestData() {
    }

    static float[] random(int n, long seed) {
        Random r = new Random(seed);
        float[] v = new float[n];
        for (int i = 0; i < n; i++) v[i] = (float) r.nextGaussian();
        return v;
    }

    static float[] concat(float[] a, float[] b) {
        float[] out = Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, out, a.length, b.length);
        return out;
    }

    /** The values as {@code type} holds them (round to nearest even), widened back to float. */
    static float[] roundTo(DType type, float[] values) {
        float[] out = new float[values.length];
        for (int i = 0; i < values.length; i++) {
            out[i] = switch (type) {
                case F32 -> values[i];
                case F16 -> Float.float16ToFloat(Float.floatToFloat16(values[i]));
                case BF16 -> Float.intBitsToFloat(bf16Bits(values[i]) << 16);
                default -> throw new IllegalArgumentException(type.toString());
            };
        }
        return out;
    }

    static short bf16Bits(float value) {
        int bits = Float.floatToRawIntBits(value);
        return (short) ((bits + 0x7FFF + ((bits >>> 16) & 1)) >>> 16);
    }

    /** A checkpoint-like tensor of {@code type} in native memory of {@code arena}, as a memory-mapped file would give. */
    static WeightTensor weight(Arena arena, String name, DType type, float[] values, int rows, int cols) {
        MemorySegment data = arena.allocate((long) values.length * type.byteSize());
        for (int i = 0; i < values.length; i++) {
            switch (type) {
                case F32 -> data.setAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED, i, values[i]);
                case F16 -> data.setAtIndex(ValueLayout.JAVA_SHORT_UNALIGNED, i, Float.floatToFloat16(values[i]));
                case BF16 -> data.setAtIndex(ValueLayout.JAVA_SHORT_UNALIGNED, i, bf16Bits(values[i]));
                default -> throw new IllegalArgumentException(type.toString());
            }
        }
        long[] shape = rows == 1 ? new long[]{cols} : new long[]{rows, cols};
        return new WeightTensor(name, type, shape, data, Path.of("random.safetensors"));
    }

    /** Sequences of {@code queryLengths} new tokens after {@code cached} tokens already in the cache. */
    static ForwardBatch batch(int[][] tables, int blockSize, int[] contexts, int[] cached, int[] queryLengths) {
        int total = Arrays.stream(queryLengths).sum();
        int[] ids = new int[total], positions = new int[total], slots = new int[total];
        int[] starts = new int[queryLengths.length + 1];
        int t = 0;
        for (int s = 0; s < queryLengths.length; s++) {
            starts[s] = t;
            for (int i = 0; i < queryLengths[s]; i++, t++) {
                int position = cached[s] + i;
                positions[t] = position;
                slots[t] = tables[s][position / blockSize] * blockSize + position % blockSize;
            }
        }
        starts[queryLengths.length] = total;
        return new ForwardBatch(ids, positions, slots, starts, contexts, tables, blockSize, new int[]{total - 1});
    }

    /** Values as activations of the backend's type (the embedding lookup converts them). */
    static Tensor activations(Backend b, float[] values, int rows, int cols) {
        int[] ids = new int[rows];
        Arrays.setAll(ids, i -> i);
        Tensor out = b.allocate(rows, cols);
        b.embedding(b.constant(values, rows, cols), b.indices(ids), out);
        return out;
    }

    /** Relative L2 error of {@code actual} against {@code expected} below {@code tolerance}, and no NaN or infinity. */
    static void assertClose(String what, float[] expected, float[] actual, double tolerance) {
        assertEquals(expected.length, actual.length, what + ": length");
        double err = 0, norm = 0;
        for (int i = 0; i < expected.length; i++) {
            if (!Float.isFinite(actual[i]) && Float.isFinite(expected[i])) fail(what + ": " + actual[i] + " at " + i);
            err += Math.pow(actual[i] - expected[i], 2);
            norm += Math.pow(expected[i], 2);
        }
        double relative = Math.sqrt(err / Math.max(norm, 1e-30));
        assertTrue(relative < tolerance, what + ": relative error " + relative);
    }
}
