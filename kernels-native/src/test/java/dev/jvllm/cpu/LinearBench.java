package dev.jvllm.cpu;

import dev.jvllm.spi.BackendOptions;
import dev.jvllm.spi.Tensor;
import dev.jvllm.weights.DType;
import dev.jvllm.weights.WeightTensor;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.SplittableRandom;

/**
 * Microbenchmark (not a test) of the linear kernel: decode-step matrix-vector products over
 * 2048×8192 and 8192×2048 weights, reported as GB/s of weights read next to a plain vector read
 * of the same bytes on as many threads (the ceiling). Weights are cycled over enough copies to
 * exceed the last-level cache, so the numbers are memory numbers. Also prints batched (T>1)
 * throughput: 2, 4 and 16 tokens for each type, then BF16 prefill shapes.
 *
 * <pre>
 * mvn -q -pl kernels-native -am test-compile dependency:build-classpath -Dmdep.outputFile=/tmp/cp.txt
 * java --add-modules jdk.incubator.vector -cp kernels-native/target/test-classes:kernels-native/target/classes:\
 *     engine-core/target/classes:$(cat /tmp/cp.txt) dev.jvllm.cpu.LinearBench [threads] [BF16,F32,F16]
 * </pre>
 */
public final class LinearBench {

    private static final long WORKING_SET_BYTES = 512L << 20;
    private static final int REPEATS = 200;

    private LinearBench() {
    }

    public static void main(String[] args) {
        int threads = args.length > 0 ? Integer.parseInt(args[0]) : Runtime.getRuntime().availableProcessors();
        DType[] types = Arrays.stream((args.length > 1 ? args[1] : "BF16,F32,F16").split(","))
                .map(DType::valueOf).toArray(DType[]::new);
        try (Arena arena = Arena.ofShared(); CpuBackend backend = new CpuBackend(threads, InnerLoops.select());
             WorkerPool readers = new WorkerPool(threads)) {
            System.out.printf("%s, %d threads%n", backend.kernelDescription(), backend.threads());
            if (Boolean.getBoolean("encoderShapes")) {
                // bge-small-en-v1.5 (hidden 384, intermediate 1536, F32) at 16, 256, 512 and 2048 tokens (the engine runs batches of up to 2048).
                for (int tokens : new int[]{16, 256, 512, 2048}) {
                    for (int[] shape : new int[][]{{384, 384}, {1536, 384}, {384, 1536}}) {
                        batched(backend, arena, DType.F32, shape[0], shape[1], tokens);
                    }
                }
                return;
            }
            for (DType type : Boolean.getBoolean("batchedOnly") ? new DType[0] : types) {
                for (int[] shape : new int[][]{{2048, 8192}, {8192, 2048}}) {
                    matrixVector(backend, readers, arena, type, shape[0], shape[1]);
                }
            }
            // Other decode shapes of common models (Llama 3 8B attention and MLP down projection).
            for (int[] shape : Boolean.getBoolean("batchedOnly") ? new int[0][] : new int[][]{{4096, 4096}, {4096, 14336}}) {
                matrixVector(backend, readers, arena, DType.BF16, shape[0], shape[1]);
            }
            // Two tokens take the four-row two-token loop, 4 and 16 the in-place tiles of four tokens.
            for (DType type : types) {
                for (int tokens : new int[]{2, 4, 16}) {
                    batched(backend, arena, type, 2048, 8192, tokens);
                }
            }
            batched(backend, arena, DType.BF16, 2048, 8192, 64);
            // The 1B model's prefill shapes (128 tokens): gate/up (8192 x 2048) and down (2048 x 8192).
            batched(backend, arena, DType.BF16, 8192, 2048, 128);
            batched(backend, arena, DType.BF16, 2048, 8192, 128);
        }
    }

    /**
     * Times the decode product against a plain read of the same weight bytes, alternating the two
     * so that both see the same share of a memory system other tenants may be using.
     */
    private static void matrixVector(CpuBackend backend, WorkerPool readers, Arena arena, DType type, int rows,
                                     int cols) {
        Tensor[] weights = weightCopies(backend, arena, type, rows, cols);
        Tensor x = randomActivations(backend, 1, cols);
        Tensor out = backend.allocate(1, rows);
        double bytes = (double) rows * cols * type.byteSize();
        float[] sink = new float[readers.size()];
        Run product = i -> backend.linear(x, weights[i % weights.length], null, out);
        Run read = i -> {
            MemorySegment data = ((CpuTensor) weights[i % weights.length]).segment();
            int pages = (int) (data.byteSize() / 4096);
            readers.forEach(pages, 16, (first, end, worker) -> sink[worker] += sum(data, first * 4096L, end * 4096L));
        };
        warmUp(product);
        warmUp(read);
        double[] productSeconds = new double[REPEATS];
        double[] readSeconds = new double[REPEATS];
        for (int i = 0; i < REPEATS; i++) {
            productSeconds[i] = seconds(product, i);
            readSeconds[i] = seconds(read, i + 1);
        }
        Arrays.sort(productSeconds);
        Arrays.sort(readSeconds);
        double productRate = bytes / productSeconds[REPEATS / 2] / 1e9;
        double readRate = bytes / readSeconds[REPEATS / 2] / 1e9;
        System.out.printf("%-4s matvec %5d×%-5d  median %5.1f GB/s (%.3f ms), plain read %5.1f GB/s: %3.0f%%%n",
                type, rows, cols, productRate, productSeconds[REPEATS / 2] * 1e3, readRate, 100 * productRate / readRate);
    }

    private static void batched(CpuBackend backend, Arena arena, DType type, int rows, int cols, int tokens) {
        Tensor[] weights = weightCopies(backend, arena, type, rows, cols);
        Tensor x = randomActivations(backend, tokens, cols);
        Tensor out = backend.allocate(tokens, rows);
        double flops = 2.0 * rows * cols * tokens;
        Run product = i -> backend.linear(x, weights[i % weights.length], null, out);
        warmUp(product);
        double[] seconds = new double[REPEATS / 4];
        for (int i = 0; i < seconds.length; i++) {
            seconds[i] = seconds(product, i);
        }
        Arrays.sort(seconds);
        double median = seconds[seconds.length / 2];
        System.out.printf("%-4s T=%-3d    %5d×%-5d  median %6.1f GFLOP/s, weights at %5.1f GB/s (%.3f ms)%n", type,
                tokens, rows, cols, flops / median / 1e9, (double) rows * cols * type.byteSize() / median / 1e9,
                median * 1e3);
    }

    private static Tensor[] weightCopies(CpuBackend backend, Arena arena, DType type, int rows, int cols) {
        long bytes = (long) rows * cols * type.byteSize();
        int copies = (int) Math.max(2, WORKING_SET_BYTES / bytes);
        Tensor[] weights = new Tensor[copies];
        SplittableRandom random = new SplittableRandom(1);
        for (int c = 0; c < copies; c++) {
            MemorySegment data = arena.allocate(bytes, 64);
            for (long i = 0; i < (long) rows * cols; i++) {
                float value = (float) random.nextGaussian() * 0.02f;
                switch (type) {
                    case F32 -> data.set(Elements.FLOAT, 4 * i, value);
                    case BF16 -> data.set(Elements.SHORT, 2 * i, Elements.floatToBf16(value));
                    case F16 -> data.set(Elements.SHORT, 2 * i, Float.floatToFloat16(value));
                    default -> throw new IllegalArgumentException(type.toString());
                }
            }
            weights[c] = backend.weight(new WeightTensor("w" + c, type, new long[]{rows, cols}, data, Path.of("bench")));
        }
        return weights;
    }

    private static Tensor randomActivations(CpuBackend backend, int rows, int cols) {
        SplittableRandom random = new SplittableRandom(2);
        float[] values = new float[rows * cols];
        for (int i = 0; i < values.length; i++) {
            values[i] = (float) random.nextGaussian();
        }
        return backend.constant(values, rows, cols);
    }

    private static float sum(MemorySegment buffer, long from, long to) {
        var species = FloatVector.SPECIES_PREFERRED;
        FloatVector s0 = FloatVector.zero(species), s1 = s0, s2 = s0, s3 = s0;
        long step = species.vectorByteSize();
        for (long at = from; at < to; at += 4 * step) {
            s0 = s0.add(FloatVector.fromMemorySegment(species, buffer, at, ByteOrder.LITTLE_ENDIAN));
            s1 = s1.add(FloatVector.fromMemorySegment(species, buffer, at + step, ByteOrder.LITTLE_ENDIAN));
            s2 = s2.add(FloatVector.fromMemorySegment(species, buffer, at + 2 * step, ByteOrder.LITTLE_ENDIAN));
            s3 = s3.add(FloatVector.fromMemorySegment(species, buffer, at + 3 * step, ByteOrder.LITTLE_ENDIAN));
        }
        return s0.add(s1).add(s2.add(s3)).reduceLanes(VectorOperators.ADD);
    }

    private interface Run {
        void run(int iteration);
    }

    /** At least two seconds: the JIT compiles the kernels in the background while both cores are busy. */
    private static void warmUp(Run run) {
        long end = System.nanoTime() + 2_000_000_000L;
        for (int i = 0; i < 20 || System.nanoTime() < end; i++) {
            run.run(i);
        }
    }

    private static double seconds(Run run, int iteration) {
        long start = System.nanoTime();
        run.run(iteration);
        return (System.nanoTime() - start) / 1e9;
    }
}
