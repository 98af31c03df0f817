package dev.jvllm.cuda;

import dev.jvllm.spi.Backend;
import dev.jvllm.spi.Tensor;
import dev.jvllm.weights.DType;
import dev.jvllm.weights.WeightTensor;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.EnumSource;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.function.Supplier;

import static dev.jvllm.cuda.CudaTestData.activations;
import static dev.jvllm.cuda.CudaTestData.random;
import static dev.jvllm.cuda.CudaTestData.roundTo;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The linear layers' products through cuBLASLt with algorithms searched per shape
 * ({@link TunedProducts}), in bfloat16 and float32, against the CPU backend in float32 on the same
 * (rounded) inputs: decode-sized and prompt-sized row counts, operands only a few bytes aligned,
 * and a product met first inside a CUDA graph capture. Skipped where no GPU is found.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class CublasLtProductsTest extends GpuAgainstCpuTest {

    /** Relative L2 errors allowed, as in CudaSixteenBitKernelsTest and CudaKernelsTest. */
    private static final Map<DType, Double> TOLERANCES = Map.of(DType.BF16, 2e-2, DType.F32, 1e-5);

    @Override
    List<DType> activationTypes() {
        return List.of(DType.BF16, DType.F32);
    }

    /**
     * With every product tuned (eager ones too), whatever jvllm.cuda.cublasLt says, and no algorithms kept
     * on disk: every shape is new to a test run, however many ran on the machine before.
     */
    @Override
    CudaBackend open(DType type) {
        return CudaBackend.open(0, type, CudaBackend.ProductTuning.ALL, null);
    }

    /** cuBLASLt is loaded and its products are searched (not silently left to cublasGemmEx). */
    private TunedProducts tuned(CudaBackend gpu) {
        TunedProducts tuned = gpu.tunedProducts();
        assertNotNull(tuned, "the tuned cuBLASLt products are on (is libcublasLt.so.13 found?)");
        return tuned;
    }

    /** One new shape each: a search on first use, whose chosen algorithm computes the product. */
    @ParameterizedTest
    @CsvSource({"F32, 1, 256, 384", "F32, 17, 1024, 2048", "F32, 64, 256, 2048", "F32, 128, 1024, 384",
            "BF16, 2, 1024, 384", "BF16, 17, 256, 384", "BF16, 64, 1024, 2048", "BF16, 128, 256, 2048",
            "BF16, 100, 1024, 384"})
    void aProductOfANewShapeIsSearchedAndMatchesCpu(DType type, int tokens, int in, int out) {
        CudaBackend gpu = gpus.get(type);
        int searched = tuned(gpu).searchedShapes();
        WeightTensor w = weight("w", type, random(out * in, 1), out, in);
        float[] x = roundTo(type, random(tokens * in, 2));
        float[][] results = new float[2][];
        Backend[] backends = {cpu, gpu};
        for (int i = 0; i < 2; i++) {
            Backend b = backends[i];
            Tensor y = b.allocate(tokens, out);
            b.linear(activations(b, x, tokens, in), b.weight(w), null, y);
            results[i] = b.toFloatArray(y);
        }
        assertClose(type + " T=" + tokens + " K=" + in + " N=" + out, results[0], results[1], type);
        assertEquals(searched + 1, tuned(gpu).searchedShapes(), "the shape was searched");
    }

    /**
     * Every algorithm a search may keep computes the product: the heuristic's and each of them run in
     * other cluster shapes, which the search also times (at 256 rows on an H200 one of those was the
     * fastest for the 8B's narrow products). A 256-row product of the 8B's o shape, so that the
     * variants the library accepts are those of the case measured. Clusters need compute capability 9.
     */
    @ParameterizedTest
    @EnumSource(value = DType.class, names = {"BF16"})
    void everyClusterVariantTheSearchTimesComputesTheProduct(DType type) {
        CudaBackend gpu = gpus.get(type);
        int tokens = 256, in = 1024, out = 4096;
        WeightTensor w = weight("w", type, random(out * in, 5), out, in);
        float[] x = roundTo(type, random(tokens * in, 6));
        Tensor expected = cpu.allocate(tokens, out);
        cpu.linear(activations(cpu, x, tokens, in), cpu.weight(w), null, expected);
        float[] want = cpu.toFloatArray(expected);
        CudaTensor weight = (CudaTensor) gpu.weight(w);
        CudaTensor input = (CudaTensor) activations(gpu, x, tokens, in);
        CudaTensor output = (CudaTensor) gpu.allocate(tokens, out);
        int variants = tuned(gpu).runEachCandidate(tokens, in, out, weight.address(), input.address(), output.address(),
                i -> assertClose(type + " candidate " + i, want, gpu.toFloatArray(output), type));
        if (gpu.context().computeMajor >= 9) {
            assertTrue(variants > 0, "the library accepted cluster variants of the heuristic's algorithms");
        }
    }

    /**
     * Row views whose addresses are only 2 or 4 bytes aligned (rows of 203 bfloat16 values or 90
     * outputs, one row in): the search asks only for algorithms that take such operands.
     */
    @ParameterizedTest
    @CsvSource({"BF16, 17", "BF16, 64", "F32, 17"})
    void rowViewsOfFewBytesAlignmentMatchCpu(DType type, int tokens) {
        CudaBackend gpu = gpus.get(type);
        int in = 203, out = 90;
        WeightTensor w = weight("w", type, random((out + 1) * in, 3), out + 1, in);
        float[] x = roundTo(type, random((tokens + 1) * in, 4));
        float[][] results = new float[2][];
        Backend[] backends = {cpu, gpu};
        for (int i = 0; i < 2; i++) {
            Backend b = backends[i];
            Tensor y = b.allocate(tokens + 1, out);
            b.linear(activations(b, x, tokens + 1, in).rows(1, tokens), b.weight(w).rows(1, out), null,
                    y.rows(1, tokens));
            results[i] = Arrays.copyOfRange(b.toFloatArray(y), out, (tokens + 1) * out);
        }
        assertClose(type + " row views, T=" + tokens, results[0], results[1], type);
    }

    /**
     * A capture that meets a product of a shape not searched yet is given up (nothing can be timed
     * while the stream records); the pass then runs eagerly, searching the shape, and its result is
     * right. The next pass of the shape is captured with the tuned algorithm, and a replay of that
     * graph on new input values is right too.
     */
    @ParameterizedTest
    @EnumSource(value = DType.class, names = {"BF16", "F32"})
    void aCaptureMeetingANewProductShapeRunsEagerlyOnceThenCapturesTheTunedProduct(DType type) {
        CudaBackend gpu = gpus.get(type);
        TunedProducts tuned = tuned(gpu);
        int tokens = 48, in = 512, out = 768;
        WeightTensor weight = weight("w", type, random(out * in, 5), out, in);
        float[] first = roundTo(type, random(tokens * in, 6));
        float[] second = roundTo(type, random(tokens * in, 7));
        Tensor w = gpu.weight(weight);
        Tensor input = activations(gpu, first, tokens, in);
        Tensor y = gpu.allocate(tokens, out);
        Supplier<Tensor> pass = productPass(gpu, input, w, y);
        Object passShape = "one product, " + type;
        int graphs = gpu.capturedGraphs();
        long launches = gpu.graphLaunches();
        int searched = tuned.searchedShapes();

        assertClose("eager pass after the given-up capture", cpuProduct(first, weight, tokens, in, out),
                gpu.toFloatArray(gpu.runCaptured(passShape, pass)), type);
        assertEquals(graphs, gpu.capturedGraphs(), "the capture was given up");
        assertEquals(searched + 1, tuned.searchedShapes(), "the eager pass searched the product's shape");

        assertClose("captured pass", cpuProduct(first, weight, tokens, in, out),
                gpu.toFloatArray(gpu.runCaptured(passShape, pass)), type);
        assertEquals(graphs + 1, gpu.capturedGraphs(), "the second pass was captured");

        gpu.embedding(gpu.constant(second, tokens, in), gpu.indices(rowIds(tokens)), input);
        assertClose("replayed pass", cpuProduct(second, weight, tokens, in, out),
                gpu.toFloatArray(gpu.runCaptured(passShape, pass)), type);
        assertEquals(launches + 2, gpu.graphLaunches(), "the capture and the replay launched the graph");
        assertEquals(searched + 1, tuned.searchedShapes(), "nothing more was searched");
    }

    /**
     * A biased product: cuBLASLt adds a bias of the activation type itself (its bias epilogue, a shape
     * searched with the bias), and add_bias_rows follows the product where the bias is of another type
     * (a float32 constant beside bfloat16 products; weights are converted to the activation type on
     * upload); both against the CPU, eagerly, in a captured pass, and in its replay on new values.
     * Each case has its own width, so that no case's search serves another's.
     */
    @ParameterizedTest
    @CsvSource({"BF16, true, 1040", "BF16, false, 1056", "F32, true, 1072"})
    void biasedProductsMatchCpuEagerCapturedAndReplayed(DType type, boolean biasOfActivationType, int out) {
        CudaBackend gpu = gpus.get(type);
        TunedProducts tuned = tuned(gpu);
        int tokens = 24, in = 384;
        WeightTensor weight = weight("w", type, random(out * in, 10), out, in);
        float[] biasValues = roundTo(type, random(out, 11));
        float[] first = roundTo(type, random(tokens * in, 12));
        float[] second = roundTo(type, random(tokens * in, 13));
        Tensor w = gpu.weight(weight);
        Tensor b = biasOfActivationType ? gpu.weight(weight("b", type, biasValues, 1, out)) : gpu.constant(biasValues, 1, out);
        assertEquals(biasOfActivationType ? type : DType.F32, ((CudaTensor) b).dtype());
        Tensor input = activations(gpu, first, tokens, in);
        Tensor y = gpu.allocate(tokens, out);
        gpu.linear(input, w, b, y);
        assertClose("eager biased product", cpuBiasedProduct(first, weight, biasValues, tokens, in, out), gpu.toFloatArray(y),
                type);
        CudaTensor view = (CudaTensor) y, x = (CudaTensor) input, wt = (CudaTensor) w;
        assertEquals(biasOfActivationType, tuned.searched(TunedProducts.Shape.of(tokens, in, out, type, wt.address(),
                x.address(), view.address(), true)), "the product's shape was searched with the bias epilogue");

        Supplier<Tensor> pass = () -> {
            gpu.linear(input, w, b, y);
            return y;
        };
        Object passShape = "one biased product, " + type + ", " + out;
        int graphs = gpu.capturedGraphs();
        assertClose("captured biased product", cpuBiasedProduct(first, weight, biasValues, tokens, in, out),
                gpu.toFloatArray(gpu.runCaptured(passShape, pass)), type);
        assertEquals(graphs + 1, gpu.capturedGraphs(), "the pass was captured (its shape searched eagerly before)");
        gpu.embedding(gpu.constant(second, tokens, in), gpu.indices(rowIds(tokens)), input);
        assertClose("replayed biased product", cpuBiasedProduct(second, weight, biasValues, tokens, in, out),
                gpu.toFloatArray(gpu.runCaptured(passShape, pass)), type);
    }

    private float[] cpuBiasedProduct(float[] x, WeightTensor w, float[] bias, int tokens, int in, int out) {
        Tensor y = cpu.allocate(tokens, out);
        cpu.linear(activations(cpu, x, tokens, in), cpu.weight(w), cpu.constant(bias, 1, out), y);
        return cpu.toFloatArray(y);
    }

    private float[] cpuProduct(float[] x, WeightTensor w, int tokens, int in, int out) {
        Tensor y = cpu.allocate(tokens, out);
        cpu.linear(activations(cpu, x, tokens, in), cpu.weight(w), null, y);
        return cpu.toFloatArray(y);
    }

    private static int[] rowIds(int rows) {
        int[] ids = new int[rows];
        Arrays.setAll(ids, i -> i);
        return ids;
    }

    private static void assertClose(String what, float[] expected, float[] actual, DType type) {
        CudaTestData.assertClose(what, expected, actual, TOLERANCES.get(type));
    }

    private WeightTensor weight(String name, DType type, float[] values, int rows, int cols) {
        return CudaTestData.weight(arena, name, type, values, rows, cols);
    }

    /**
     * The algorithms one backend chose are kept in its file, and a backend opened later on the same
     * file takes them: a capture that meets a kept shape is captured at once (a new shape's is
     * given up for a search), and the graph's product is right.
     */
    @ParameterizedTest
    @EnumSource(value = DType.class, names = {"BF16", "F32"})
    void algorithmsKeptByOneBackendAreTakenByTheNextWithoutASearch(DType type, @TempDir Path kept) {
        int tokens = 40, in = 512, out = 640;
        WeightTensor weight = weight("w", type, random(out * in, 8), out, in);
        float[] x = roundTo(type, random(tokens * in, 9));
        float[] expected = cpuProduct(x, weight, tokens, in, out);
        try (CudaBackend first = CudaBackend.open(0, type, CudaBackend.ProductTuning.ALL, kept)) {
            Tensor y = first.allocate(tokens, out);
            first.linear(activations(first, x, tokens, in), first.weight(weight), null, y);
            assertClose("the searching backend's product", expected, first.toFloatArray(y), type);
        }
        try (CudaBackend second = CudaBackend.open(0, type, CudaBackend.ProductTuning.ALL, kept)) {
            Tensor w = second.weight(weight);
            Tensor input = activations(second, x, tokens, in);
            Tensor y = second.allocate(tokens, out);
            Supplier<Tensor> pass = productPass(second, input, w, y);
            assertClose("the captured pass of a kept shape", expected,
                    second.toFloatArray(second.runCaptured("a kept product, " + type, pass)), type);
            assertEquals(1, second.capturedGraphs(), "the first capture was kept, not given up for a search");
            assertEquals(1, tuned(second).searchedShapes(), "the kept shape is the one plan");
        }
    }

    /**
     * The default tuning searches only the shapes of captured passes (decode graphs): an eager
     * product of a new shape, such as a step's mix of prefill chunks, runs through cublasGemmEx
     * at once, with no search on the serving path. A capture meeting a new shape is given up, and
     * its eager rerun searches every new shape of the pass (here two), so that the next capture
     * succeeds with the tuned products. Every result is right.
     */
    @ParameterizedTest
    @EnumSource(value = DType.class, names = {"BF16", "F32"})
    void onlyCapturedPassesSearchTheirShapesByDefault(DType type) {
        int tokens = 24, in = 512, hidden = 896, out = 320;
        WeightTensor first = weight("w1", type, random(hidden * in, 10), hidden, in);
        WeightTensor second = weight("w2", type, random(out * hidden, 12), out, hidden);
        float[] x = roundTo(type, random(tokens * in, 11));
        float[] expectedHidden = cpuProduct(x, first, tokens, in, hidden);
        float[] expected = cpuProduct(roundTo(type, expectedHidden), second, tokens, hidden, out);
        try (CudaBackend gpu = CudaBackend.open(0, type, CudaBackend.ProductTuning.CAPTURED, null)) {
            TunedProducts tuned = tuned(gpu);
            Tensor w1 = gpu.weight(first), w2 = gpu.weight(second);
            Tensor input = activations(gpu, x, tokens, in);
            Tensor h = gpu.allocate(tokens, hidden), y = gpu.allocate(tokens, out);
            gpu.linear(input, w1, null, h);
            assertClose("the eager product", expectedHidden, gpu.toFloatArray(h), type);
            assertEquals(0, tuned.searchedShapes(), "an eager product of a new shape is not searched");

            Supplier<Tensor> pass = () -> {
                gpu.linear(input, w1, null, h);
                gpu.linear(h, w2, null, y);
                return y;
            };
            assertClose("the pass whose capture was given up", expected,
                    gpu.toFloatArray(gpu.runCaptured("two products by default, " + type, pass)), type);
            assertEquals(0, gpu.capturedGraphs(), "the capture met a new shape and was given up");
            assertEquals(2, tuned.searchedShapes(), "its eager rerun searched both of the pass's shapes");
            assertClose("the captured pass", expected,
                    gpu.toFloatArray(gpu.runCaptured("two products by default, " + type, pass)), type);
            assertEquals(1, gpu.capturedGraphs(), "the next pass was captured with the tuned products");
            gpu.linear(y, gpu.weight(weight("w3", type, random(64 * out, 13), 64, out)), null, gpu.allocate(tokens, 64));
            assertEquals(2, tuned.searchedShapes(), "eager products after the rerun are not searched");
        }
    }

    /** A pass of one product, y = input · wᵀ, as runCaptured takes it. */
    private static Supplier<Tensor> productPass(Backend backend, Tensor input, Tensor w, Tensor y) {
        return () -> {
            backend.linear(input, w, null, y);
            return y;
        };
    }
}
