package dev.jvllm.cuda;

import dev.jvllm.weights.DType;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.atomic.AtomicBoolean;

import static java.lang.foreign.ValueLayout.JAVA_BYTE;

/**
 * The linear layers' products through cuBLASLt, each product shape with the algorithm that ran
 * fastest on the device: on a shape's first eager use (with {@code searchEagerShapes}; otherwise
 * only for shapes a capture met first), up to {@code candidates} algorithms of the
 * library's heuristic are timed on that product's own operands, and the fastest is kept for every
 * later product of the shape. cuBLAS's own choice (cublasGemmEx's default algorithm) is timed
 * beside them for the log only.
 *
 * <p>The products are those of {@link CudaBackend}'s gemm: row-major {@code out[T, N] = x[T, K] ·
 * W[N, K]ᵀ}, issued column-major as {@code outᵀ[N, T] = op_T(W[K, N]) · xᵀ[K, T]}, with float32
 * sums and alpha = 1, beta = 0 (C is D, and is not read); a biased shape also adds a bias of N
 * (cuBLASLt's bias epilogue) to every row of out, so that no separate kernel does.
 *
 * <p>The chosen algorithms are kept on disk ({@link TunedProductsFile}, beside the compiled
 * kernels), so that a later run on the same device and library takes them without a search; a
 * captured pass that meets a kept shape then needs no eager rerun either.
 *
 * <p>Descriptors are made once per shape and kept until {@link #close()}.
 */
final class TunedProducts implements AutoCloseable {

    private static final Logger log = LoggerFactory.getLogger(TunedProducts.class);
    private static final AtomicBoolean warnedUnavailable = new AtomicBoolean();

    /**
     * Whether the search also times the heuristic's candidates in other cluster shapes
     * ({@code -Djvllm.cuda.cublasLtClusterVariants=false}: the heuristic's own only; for A/B runs).
     */
    private static final boolean CLUSTER_VARIANTS =
            Boolean.parseBoolean(System.getProperty("jvllm.cuda.cublasLtClusterVariants", "true"));
    /** cublasLtClusterShape_t's 1×1×1, 2×1×1, 4×1×1 and 1×2×1. */
    private static final short[] CLUSTER_SHAPES = {2, 3, 4, 5};

    private static final int WARM_UP_RUNS = 2;
    private static final int TIMED_RUNS = 5;
    /** The largest pointer alignment the algorithms ask for (cuBLASLt's default assumption). */
    static final int MAX_ALIGNMENT = 256;

    /**
     * A product's shape as the search keys it. The operands' alignments (powers of two up to 256
     * bytes) are part of it: they decide which algorithms may run on them.
     */
    record Shape(int tokens, int in, int outFeatures, DType type, int weightAlignment, int inputAlignment,
                 int outputAlignment, boolean bias) {

        /** A shape without a bias. */
        Shape(int tokens, int in, int outFeatures, DType type, int weightAlignment, int inputAlignment, int outputAlignment) {
            this(tokens, in, outFeatures, type, weightAlignment, inputAlignment, outputAlignment, false);
        }

        static Shape of(int tokens, int in, int outFeatures, DType type, long weight, long input, long output) {
            return of(tokens, in, outFeatures, type, weight, input, output, false);
        }

        static Shape of(int tokens, int in, int outFeatures, DType type, long weight, long input, long output, boolean bias) {
            return new Shape(tokens, in, outFeatures, type, alignment(weight), alignment(input), alignment(output), bias);
        }

        /** The largest power of two up to {@link #MAX_ALIGNMENT} that divides {@code address}. */
        static int alignment(long address) {
            return address == 0 ? MAX_ALIGNMENT : (int) Math.min(MAX_ALIGNMENT, Long.lowestOneBit(address));
        }

        @Override
        public String toString() {
            return "T=" + tokens + " N=" + outFeatures + " K=" + in + " " + type + (bias ? " + bias" : "") + " (aligned "
                    + weightAlignment + "/" + inputAlignment + "/" + outputAlignment + ")";
        }
    }

    /**
     * A searched shape: its descriptors and chosen algorithm, or (no algorithm) a shape that runs
     * through cublasGemmEx because no candidate could.
     */
    static final class Plan {
        final Shape shape;
        private final MemorySegment descriptor, weightLayout, inputLayout, outputLayout;
        private MemorySegment algorithm;

        private Plan(Shape shape, MemorySegment descriptor, MemorySegment weightLayout, MemorySegment inputLayout,
                     MemorySegment outputLayout) {
            this.shape = shape;
            this.descriptor = descriptor;
            this.weightLayout = weightLayout;
            this.inputLayout = inputLayout;
            this.outputLayout = outputLayout;
        }
    }

    private final CublasLt lt;
    private final MemorySegment handle;
    private final CudaContext context;
    private final DeviceMemory memory;
    private final DType type;
    private final long workspace;
    private final long workspaceBytes;
    private final MemorySegment one;
    private final MemorySegment zero;
    private final int candidates;
    /** Whether an eager product of a new shape is searched; if not, only the shapes of captured passes are. */
    private final boolean searchEagerShapes;
    /**
     * Set when a capture is given up for a shape not yet searched, until the backend's eager rerun of
     * that pass ends ({@link #rerunEnded}): the rerun searches every new shape it meets, not only the
     * one that stopped the capture, so that the pass's next capture succeeds.
     */
    private boolean rerunningGivenUpCapture;
    /** The algorithms kept from earlier runs, and where this run's are kept; null: none are kept. */
    private final TunedProductsFile kept;
    /** Bytes written between timed runs to push the weights out of L2, as the rest of a pass would. */
    private final long flushBytes;
    /** Where the chosen algorithms live. */
    private final Arena arena = Arena.ofShared();
    private final Map<Shape, Plan> plans = new HashMap<>();
    private final Set<Shape> abortedCaptures = new HashSet<>();
    private final MemorySegment[] starts = new MemorySegment[TIMED_RUNS];
    private final MemorySegment[] ends = new MemorySegment[TIMED_RUNS];

    private TunedProducts(CublasLt lt, CudaContext context, DeviceMemory memory, DType type, DeviceBuffer workspace,
                          MemorySegment one, MemorySegment zero, int candidates, Path keptIn, boolean searchEagerShapes) {
        this.lt = lt;
        this.context = context;
        this.memory = memory;
        this.type = type;
        this.workspace = workspace.address();
        this.workspaceBytes = workspace.bytes();
        this.one = one;
        this.zero = zero;
        this.candidates = candidates;
        this.searchEagerShapes = searchEagerShapes;
        this.flushBytes = 2L * context.driver.attribute(context.device, CudaDriver.ATTRIBUTE_L2_CACHE_SIZE);
        this.handle = lt.create();
        this.kept = keptIn == null ? null : TunedProductsFile.open(keptIn, context.deviceName, context.computeMajor,
                context.computeMinor, lt.version(), CLUSTER_VARIANTS ? "clusters" : "heuristic", type);
        if (kept != null && kept.size() > 0) {
            log.debug("cuBLASLt algorithms of {} shapes kept in {}", kept.size(), kept.file());
        }
    }

    /**
     * Tuned products of operands of {@code type} on {@code context}'s stream, sharing the cuBLAS
     * workspace (the stream orders its users); alpha and beta are host floats 1 and 0. Null, with a
     * warning the first time, where cuBLASLt cannot be loaded or started: the products then stay
     * with cublasGemmEx. Without {@code searchEagerShapes}, an eager product of a shape neither
     * searched nor kept runs through cublasGemmEx, unless a capture met the shape first.
     */
    static TunedProducts open(CudaContext context, DeviceMemory memory, DType type, DeviceBuffer workspace,
                              MemorySegment one, MemorySegment zero, int candidates, Path keptIn,
                              boolean searchEagerShapes) {
        try {
            return new TunedProducts(CublasLt.get(), context, memory, type, workspace, one, zero, candidates, keptIn,
                    searchEagerShapes);
        } catch (CudaException e) {
            if (!warnedUnavailable.getAndSet(true)) {
                log.warn("cuBLASLt is not available ({}); the linear layers' products use cublasGemmEx", e.getMessage());
            }
            return null;
        }
    }

    /**
     * The plan for the product {@code output[tokens, outFeatures] = input[tokens, in] ·
     * weight[outFeatures, in]ᵀ} (device addresses; {@code bias}, of the activation type and outFeatures
     * long, added to each row by the plan, or 0 for none), or null where it is to run through
     * cublasGemmEx ({@code defaultProduct}, which queues the product without the bias: the caller then
     * adds it). An eager pass searches a new
     * shape here (with searchEagerShapes, or after a capture met the shape), running its candidates
     * on these operands (each run rewrites the output with the same product) and waiting for the device.
     *
     * <p>A captured pass cannot time anything: its work is only recorded. Meeting a new shape, it
     * aborts the capture (remedy RETRY) rather than capture cublasGemmEx: the backend then runs the
     * same pass eagerly, which searches the shape, and the pass shape's next capture takes the tuned
     * algorithm, so a graph never keeps an untuned product for its life. A shape that aborted a
     * capture once and is still not searched (its eager pass did not meet the same shape, e.g.
     * operands aligned differently) falls back to cublasGemmEx in the capture instead, so that
     * captures are not given up for it.
     */
    Plan plan(int tokens, int in, int outFeatures, long weight, long input, long output, long bias, boolean capturing,
              Runnable defaultProduct) {
        Shape shape = Shape.of(tokens, in, outFeatures, type, weight, input, output, bias != 0);
        Plan plan = plans.get(shape);
        if (plan == null) plan = keptPlan(shape);
        if (plan == null) {
            if (capturing) {
                if (abortedCaptures.add(shape)) {
                    rerunningGivenUpCapture = true;
                    throw new GraphRecording.Abort("the pass has a product not yet tuned (" + shape + ")",
                            GraphRecording.Abort.Remedy.RETRY);
                }
                return null;
            }
            if (!searchEagerShapes && !rerunningGivenUpCapture && !abortedCaptures.contains(shape)) return null;
            plan = describe(shape);
            try {
                search(plan, weight, input, output, bias, defaultProduct);
            } catch (RuntimeException e) {
                release(plan);
                throw e;
            }
            plans.put(shape, plan);
            if (kept != null) kept.keep(shape, plan.algorithm == null ? null : plan.algorithm.toArray(JAVA_BYTE));
        }
        return plan.algorithm == null ? null : plan;
    }

    /**
     * The plan of a shape already searched (or kept and registered), or null: what a replayed pass
     * looks up, without searching or giving anything up.
     */
    Plan searchedPlan(int tokens, int in, int outFeatures, long weight, long input, long output, long bias) {
        Plan plan = plans.get(Shape.of(tokens, in, outFeatures, type, weight, input, output, bias != 0));
        return plan == null || plan.algorithm == null ? null : plan;
    }

    /**
     * The plan of a shape kept from an earlier run, registered, or null where none is kept or the
     * library no longer accepts the kept algorithm (it is then forgotten, and the shape searched).
     */
    private Plan keptPlan(Shape shape) {
        if (kept == null) return null;
        Optional<byte[]> bytes = kept.algorithm(shape);
        if (bytes.isEmpty()) return null;
        Plan plan = describe(shape);
        if (bytes.get().length > 0) {
            MemorySegment algorithm = arena.allocate(CublasLt.ALGORITHM_BYTES, 8).copyFrom(MemorySegment.ofArray(bytes.get()));
            long needs = lt.check(handle, plan.descriptor, plan.weightLayout, plan.inputLayout, plan.outputLayout,
                    plan.outputLayout, algorithm);
            if (needs < 0 || needs > workspaceBytes) {
                log.debug("cublasLt {}: the kept algorithm is not accepted (workspace {}); searching again", shape, needs);
                release(plan);
                kept.forget(shape);
                return null;
            }
            plan.algorithm = algorithm;
        }
        plans.put(shape, plan);
        return plan;
    }

    /** The eager rerun of a pass whose capture was given up has been queued (see rerunningGivenUpCapture). */
    void rerunEnded() {
        rerunningGivenUpCapture = false;
    }

    /** Queues the product by the plan's algorithm; {@code bias}: as {@link #plan} was given it (0 for none). */
    void multiply(Plan plan, long weight, long input, long output, long bias) {
        multiply(plan, plan.algorithm, weight, input, output, bias);
    }

    private void multiply(Plan plan, MemorySegment algorithm, long weight, long input, long output, long bias) {
        if (plan.shape.bias()) {
            if (bias == 0) throw new IllegalArgumentException("cublasLt " + plan.shape + ": no bias given");
            // Read when the product is queued (or captured): the descriptor is the shape's, its pointer this product's.
            lt.setMatmulPointer(plan.descriptor, CublasLt.MATMUL_DESC_BIAS_POINTER, bias);
        }
        lt.matmul(handle, plan.descriptor, one, weight, plan.weightLayout, input, plan.inputLayout, zero, output,
                plan.outputLayout, output, plan.outputLayout, algorithm, workspace, workspaceBytes, context.stream);
    }

    /**
     * Queues the product {@code output = input · weightᵀ} once by each algorithm a search of its shape
     * would time (the heuristic's, then the cluster variants), calling {@code afterEach} with the
     * variant's index after each; returns how many of them were cluster variants. For tests: the
     * search keeps whichever is fastest, so each must compute the product.
     */
    int runEachCandidate(int tokens, int in, int outFeatures, long weight, long input, long output,
                         java.util.function.IntConsumer afterEach) {
        Plan plan = describe(Shape.of(tokens, in, outFeatures, type, weight, input, output));
        try (Arena scratch = Arena.ofConfined()) {
            List<CublasLt.Candidate> heuristic = heuristic(plan, scratch);
            List<CublasLt.Candidate> all = withClusterVariants(plan, heuristic, scratch);
            for (int i = 0; i < all.size(); i++) {
                multiply(plan, all.get(i).algorithm(), weight, input, output, 0);
                afterEach.accept(i);
            }
            return all.size() - heuristic.size();
        } finally {
            release(plan);
        }
    }

    /** Shapes searched so far. */
    int searchedShapes() {
        return plans.size();
    }

    boolean searched(Shape shape) {
        return plans.containsKey(shape);
    }

    /** Times the candidates for the plan's shape on these operands and keeps the fastest in the plan. */
    private void search(Plan plan, long weight, long input, long output, long bias, Runnable defaultProduct) {
        long began = System.nanoTime();
        Shape shape = plan.shape;
        try (Arena scratch = Arena.ofConfined()) {
            List<CublasLt.Candidate> offered = withClusterVariants(plan, heuristic(plan, scratch), scratch);
            if (offered.isEmpty()) {
                log.debug("cublasLt {}: the heuristic offers no algorithm; cublasGemmEx runs it", shape);
                return;
            }
            DeviceBuffer flush = flushBuffer();
            float[] millis = new float[offered.size()];
            float reference;
            try {
                reference = time(defaultProduct, flush);
                for (int i = 0; i < millis.length; i++) {
                    MemorySegment algorithm = offered.get(i).algorithm();
                    try {
                        millis[i] = time(() -> multiply(plan, algorithm, weight, input, output, bias), flush);
                    } catch (CudaException notRunnable) {
                        log.debug("cublasLt {}: candidate {} does not run: {}", shape, i, notRunnable.getMessage());
                        millis[i] = Float.POSITIVE_INFINITY;
                    }
                }
            } finally {
                if (flush != null) memory.free(flush);
            }
            int best = fastest(millis);
            if (Float.isInfinite(millis[best])) {
                log.debug("cublasLt {}: none of the {} candidates runs; cublasGemmEx runs it", shape, millis.length);
                return;
            }
            plan.algorithm = arena.allocate(CublasLt.ALGORITHM_BYTES, 8).copyFrom(offered.get(best).algorithm());
            if (log.isDebugEnabled()) {
                log.debug("cublasLt {}: candidate {} of {} at {} us, the heuristic's first {} us, cublasGemmEx {} us"
                                + " (searched in {} ms{})", shape, best, millis.length, micros(millis[best]),
                        micros(millis[0]), micros(reference), (System.nanoTime() - began) / 1_000_000,
                        flush == null ? ", L2 not flushed" : "");
                log.trace("cublasLt {}: candidates' times {} us", shape, Arrays.toString(micros(millis)));
            }
        }
    }

    /** The shape's descriptors: W as stored is K × N (op T), x is K × T, out N × T, all column-major. */
    private Plan describe(Shape shape) {
        int dataType = CudaBackend.cudaDataType(shape.type());
        MemorySegment descriptor = lt.createMatmulDescriptor(Cublas.COMPUTE_32F, Cublas.R_32F);
        lt.setMatmulAttribute(descriptor, CublasLt.MATMUL_DESC_TRANSA, Cublas.OP_T);
        lt.setMatmulAttribute(descriptor, CublasLt.MATMUL_DESC_TRANSB, Cublas.OP_N);
        if (shape.bias()) lt.setMatmulAttribute(descriptor, CublasLt.MATMUL_DESC_EPILOGUE, CublasLt.EPILOGUE_BIAS);
        return new Plan(shape, descriptor,
                lt.createLayout(dataType, shape.in(), shape.outFeatures(), shape.in()),
                lt.createLayout(dataType, shape.in(), shape.tokens(), shape.in()),
                lt.createLayout(dataType, shape.outFeatures(), shape.tokens(), shape.outFeatures()));
    }

    /**
     * The heuristic's candidates, then each of them again with thread-block clusters of the shapes in
     * CLUSTER_SHAPES where the library accepts that for the product and it differs from the candidate's
     * own. The heuristic offers each tile in one cluster shape; on an H200 another of the same tile
     * measured faster for the 8B's narrow products at 256 rows (o 16.5 against 18.1 µs for the
     * heuristic's best and 20.3 for cublasGemmEx; tools/gpu/microbench/cublaslt_sweep.cu).
     */
    private List<CublasLt.Candidate> withClusterVariants(Plan plan, List<CublasLt.Candidate> offered, Arena scratch) {
        if (!CLUSTER_VARIANTS || offered.isEmpty()) return offered;
        List<CublasLt.Candidate> all = new ArrayList<>(offered);
        Set<ByteBuffer> seen = new HashSet<>();
        for (CublasLt.Candidate candidate : offered) seen.add(ByteBuffer.wrap(candidate.algorithm().toArray(JAVA_BYTE)));
        for (CublasLt.Candidate candidate : offered) {
            for (short shape : CLUSTER_SHAPES) {
                MemorySegment variant = lt.withClusterShape(candidate.algorithm(), shape, scratch);
                if (variant == null || !seen.add(ByteBuffer.wrap(variant.toArray(JAVA_BYTE)))) continue;
                long needs = lt.check(handle, plan.descriptor, plan.weightLayout, plan.inputLayout, plan.outputLayout,
                        plan.outputLayout, variant);
                if (needs >= 0 && needs <= workspaceBytes) all.add(new CublasLt.Candidate(variant, needs, candidate.waves()));
            }
        }
        return all;
    }

    private List<CublasLt.Candidate> heuristic(Plan plan, Arena scratch) {
        MemorySegment preference = lt.createPreference();
        try {
            lt.setPreferenceAttribute(preference, CublasLt.PREFERENCE_MAX_WORKSPACE_BYTES, workspaceBytes);
            lt.setPreferenceAttribute(preference, CublasLt.PREFERENCE_MIN_ALIGNMENT_A_BYTES, plan.shape.weightAlignment());
            lt.setPreferenceAttribute(preference, CublasLt.PREFERENCE_MIN_ALIGNMENT_B_BYTES, plan.shape.inputAlignment());
            lt.setPreferenceAttribute(preference, CublasLt.PREFERENCE_MIN_ALIGNMENT_C_BYTES, plan.shape.outputAlignment());
            lt.setPreferenceAttribute(preference, CublasLt.PREFERENCE_MIN_ALIGNMENT_D_BYTES, plan.shape.outputAlignment());
            return lt.heuristic(handle, plan.descriptor, plan.weightLayout, plan.inputLayout, plan.outputLayout,
                    plan.outputLayout, preference, candidates, scratch);
        } finally {
            lt.destroyPreference(preference);
        }
    }

    /**
     * The median device time of {@code product} in milliseconds, over TIMED_RUNS runs after
     * WARM_UP_RUNS, each after the L2 flush (when there is one) and bracketed by its own events.
     */
    private float time(Runnable product, DeviceBuffer flush) {
        for (int i = 0; i < WARM_UP_RUNS; i++) product.run();
        for (int i = 0; i < TIMED_RUNS; i++) {
            if (flush != null) context.driver.fill(flush.address(), (byte) 0, flush.bytes(), context.stream);
            context.driver.record(event(starts, i), context.stream);
            product.run();
            context.driver.record(event(ends, i), context.stream);
        }
        float[] millis = new float[TIMED_RUNS];
        for (int i = 0; i < TIMED_RUNS; i++) millis[i] = context.driver.elapsedMillis(starts[i], ends[i]);
        Arrays.sort(millis);
        return millis[TIMED_RUNS / 2];
    }

    private MemorySegment event(MemorySegment[] events, int i) {
        if (events[i] == null) events[i] = context.driver.createEvent();
        return events[i];
    }

    /**
     * A buffer of twice the L2's size for the search's flushes, or null (times then taken with the
     * weights in L2) where the device has no room for it now.
     */
    private DeviceBuffer flushBuffer() {
        try {
            return memory.allocate(flushBytes, DeviceMemory.Kind.STREAM_ORDERED);
        } catch (CudaException noRoom) {
            return null;
        }
    }

    /** The index of the smallest time; candidate 0 (the heuristic's first) where all are equal. */
    static int fastest(float[] millis) {
        int best = 0;
        for (int i = 1; i < millis.length; i++) {
            if (millis[i] < millis[best]) best = i;
        }
        return best;
    }

    private static String micros(float millis) {
        return String.format("%.1f", millis * 1000);
    }

    private static String[] micros(float[] millis) {
        String[] text = new String[millis.length];
        for (int i = 0; i < millis.length; i++) text[i] = micros(millis[i]);
        return text;
    }

    private void release(Plan plan) {
        lt.destroyMatmulDescriptor(plan.descriptor);
        lt.destroyLayout(plan.weightLayout);
        lt.destroyLayout(plan.inputLayout);
        lt.destroyLayout(plan.outputLayout);
    }

    @Override
    public void close() {
        for (Plan plan : plans.values()) release(plan);
        plans.clear();
        for (MemorySegment event : starts) if (event != null) context.driver.destroyEvent(event);
        for (MemorySegment event : ends) if (event != null) context.driver.destroyEvent(event);
        lt.destroy(handle);
        arena.close();
    }
}
