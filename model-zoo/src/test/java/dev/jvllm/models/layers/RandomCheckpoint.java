package dev.jvllm.models.layers;

import dev.jvllm.weights.Checkpoint;
import dev.jvllm.weights.DType;
import dev.jvllm.weights.WeightTensor;
import dev.jvllm.weights.WeightsException;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Optional;
import java.util.Random;
import java.util.Set;

/** An in-memory float32 checkpoint for tests: tensors of given values, or drawn from N(0, std²) with a seed. */
public final class RandomCheckpoint implements Checkpoint {

    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private final Arena arena = Arena.ofShared();
    private final Map<String, WeightTensor> tensors = new LinkedHashMap<>();
    private final Map<String, float[]> values = new LinkedHashMap<>();
    private final Random random;

    public RandomCheckpoint(long seed) {
        this.random = new Random(seed);
    }

    /** Adds {@code name} with N(0, std²) elements; returns them. */
    public float[] random(String name, double std, long... shape) {
        long n = 1;
        for (long d : shape) n *= d;
        float[] v = new float[(int) n];
        for (int i = 0; i < v.length; i++) v[i] = (float) (random.nextGaussian() * std);
        return put(name, v, shape);
    }

    /** Adds {@code name} with elements 1 + N(0, 0.1²) (a norm weight); returns them. */
    public float[] nearOne(String name, long size) {
        float[] v = random(name, 0.1, size);
        for (int i = 0; i < v.length; i++) v[i] += 1;
        return put(name, v, size);
    }

    /** Adds (or replaces) {@code name} with the given elements. */
    public float[] put(String name, float[] v, long... shape) {
        MemorySegment data = arena.allocate((long) v.length * Float.BYTES, 64);
        for (int i = 0; i < v.length; i++) data.setAtIndex(F32, i, v[i]);
        tensors.put(name, new WeightTensor(name, DType.F32, shape, data, Path.of("memory.safetensors")));
        values.put(name, v.clone());
        return v;
    }

    /** The elements of {@code name}. */
    public float[] values(String name) {
        return values.get(name).clone();
    }

    @Override
    public Set<String> names() {
        return tensors.keySet();
    }

    @Override
    public Optional<WeightTensor> find(String name) {
        return Optional.ofNullable(tensors.get(name));
    }

    @Override
    public WeightTensor get(String name) {
        return find(name).orElseThrow(() -> new WeightsException("tensor '" + name + "' is not in the test checkpoint"));
    }

    @Override
    public void close() {
        arena.close();
    }
}
