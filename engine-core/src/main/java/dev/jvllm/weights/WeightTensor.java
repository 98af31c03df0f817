package dev.jvllm.weights;

import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.Arrays;

/**
 * One tensor of a checkpoint: its bytes stay in the memory-mapped file ({@code data} is a slice of
 * the mapping, little-endian, not necessarily aligned: read it with the {@code *_UNALIGNED} value
 * layouts in {@link java.nio.ByteOrder#LITTLE_ENDIAN} order).
 */
public record WeightTensor(String name, DType dtype, long[] shape, MemorySegment data, Path file) {

    public WeightTensor {
        shape = shape.clone();
    }

    @Override
    public long[] shape() {
        return shape.clone();
    }

    /** Size of dimension {@code i}; negative indices count from the end. */
    public long dim(int i) {
        return shape[i < 0 ? shape.length + i : i];
    }

    public int rank() {
        return shape.length;
    }

    public long elementCount() {
        long n = 1;
        for (long d : shape) n *= d;
        return n;
    }

    @Override
    public String toString() {
        return name + " " + dtype + Arrays.toString(shape) + " in " + file.getFileName();
    }
}
