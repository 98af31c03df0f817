package dev.jvllm.cuda;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;
import java.util.ArrayList;
import java.util.List;

import static dev.jvllm.cuda.NativeLibrary.call;
import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;
import static java.lang.foreign.ValueLayout.JAVA_SHORT;

/**
 * cuBLASLt ({@code libcublasLt.so.13}): matrix products whose algorithm the caller chooses among
 * the candidates the library's heuristic offers ({@link TunedProducts} times them). Column-major,
 * as cuBLAS is; device pointers are longs, descriptors and handles addresses. Enum values and the
 * heuristic result's layout are those of CUDA 13's {@code cublasLt.h}.
 */
final class CublasLt {

    /** cublasLtMatmulDescAttributes_t: the operations on A and B, int32 cublasOperation_t each. */
    static final int MATMUL_DESC_TRANSA = 3;
    static final int MATMUL_DESC_TRANSB = 4;
    /** The operation after the product (int32 cublasLtEpilogue_t), and the bias vector's device pointer. */
    static final int MATMUL_DESC_EPILOGUE = 7;
    static final int MATMUL_DESC_BIAS_POINTER = 8;
    /** cublasLtEpilogue_t: D = A·B + bias, the bias (D's rows long, of D's type) broadcast over D's columns. */
    static final int EPILOGUE_BIAS = 4;
    /** cublasLtMatmulPreferenceAttributes_t: the workspace the algorithms may use (uint64). */
    static final int PREFERENCE_MAX_WORKSPACE_BYTES = 1;
    /** The alignments of A, B, C and D's pointers the algorithms may assume (uint32 each, 256 unless set). */
    static final int PREFERENCE_MIN_ALIGNMENT_A_BYTES = 5;
    static final int PREFERENCE_MIN_ALIGNMENT_B_BYTES = 6;
    static final int PREFERENCE_MIN_ALIGNMENT_C_BYTES = 7;
    static final int PREFERENCE_MIN_ALIGNMENT_D_BYTES = 8;

    /**
     * cublasLtMatmulHeuristicResult_t: the algorithm (cublasLtMatmulAlgo_t, uint64_t data[8]), then
     * size_t workspaceSize, cublasStatus_t state, float wavesCount, int reserved[4].
     */
    static final long HEURISTIC_RESULT_BYTES = 96;
    static final long ALGORITHM_BYTES = 64;
    private static final long RESULT_WORKSPACE = 64, RESULT_STATE = 72, RESULT_WAVES = 76;
    private static final int STATUS_SUCCESS = 0;
    /** CUBLAS_STATUS_NOT_SUPPORTED: from the heuristic, no algorithm for the configuration. */
    private static final int STATUS_NOT_SUPPORTED = 15;

    private static final NativeLibrary.LazyBinding<CublasLt> BINDING =
            new NativeLibrary.LazyBinding<>(() -> new CublasLt(NativeLibrary.open("libcublasLt.so.13")));

    /** cuBLASLt, loaded once; throws the reason when it cannot be. */
    static CublasLt get() {
        return BINDING.get();
    }

    /**
     * One algorithm the heuristic offered: its descriptor (a copy, independent of the results
     * array), the workspace it needs and its estimated share of the device (waves).
     */
    record Candidate(MemorySegment algorithm, long workspaceBytes, float waves) {
    }

    private final MethodHandle cublasLtCreate;
    private final MethodHandle cublasLtMatmulAlgoConfigSetAttribute;
    private final MethodHandle cublasLtDestroy;
    private final MethodHandle cublasLtMatmulDescCreate;
    private final MethodHandle cublasLtMatmulDescDestroy;
    private final MethodHandle cublasLtMatmulDescSetAttribute;
    private final MethodHandle cublasLtMatrixLayoutCreate;
    private final MethodHandle cublasLtMatrixLayoutDestroy;
    private final MethodHandle cublasLtMatmulPreferenceCreate;
    private final MethodHandle cublasLtMatmulPreferenceDestroy;
    private final MethodHandle cublasLtMatmulPreferenceSetAttribute;
    private final MethodHandle cublasLtMatmulAlgoGetHeuristic;
    private final MethodHandle cublasLtMatmulAlgoCheck;
    private final MethodHandle cublasLtMatmul;
    private final MethodHandle cublasLtGetVersion;
    private final MethodHandle cublasLtGetStatusName;
    private final MethodHandle cublasLtGetStatusString;

    private CublasLt(NativeLibrary lib) {
        cublasLtCreate = lib.function("cublasLtCreate", FunctionDescriptor.of(JAVA_INT, ADDRESS));
        cublasLtMatmulAlgoConfigSetAttribute = lib.function("cublasLtMatmulAlgoConfigSetAttribute",
                FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, ADDRESS, JAVA_LONG));
        cublasLtDestroy = lib.function("cublasLtDestroy", FunctionDescriptor.of(JAVA_INT, ADDRESS));
        cublasLtMatmulDescCreate = lib.function("cublasLtMatmulDescCreate",
                FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT));
        cublasLtMatmulDescDestroy = lib.function("cublasLtMatmulDescDestroy", FunctionDescriptor.of(JAVA_INT, ADDRESS));
        cublasLtMatmulDescSetAttribute = lib.function("cublasLtMatmulDescSetAttribute",
                FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, ADDRESS, JAVA_LONG));
        cublasLtMatrixLayoutCreate = lib.function("cublasLtMatrixLayoutCreate",
                FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_LONG, JAVA_LONG, JAVA_LONG));
        cublasLtMatrixLayoutDestroy = lib.function("cublasLtMatrixLayoutDestroy", FunctionDescriptor.of(JAVA_INT, ADDRESS));
        cublasLtMatmulPreferenceCreate = lib.function("cublasLtMatmulPreferenceCreate",
                FunctionDescriptor.of(JAVA_INT, ADDRESS));
        cublasLtMatmulPreferenceDestroy = lib.function("cublasLtMatmulPreferenceDestroy",
                FunctionDescriptor.of(JAVA_INT, ADDRESS));
        cublasLtMatmulPreferenceSetAttribute = lib.function("cublasLtMatmulPreferenceSetAttribute",
                FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, ADDRESS, JAVA_LONG));
        cublasLtMatmulAlgoGetHeuristic = lib.function("cublasLtMatmulAlgoGetHeuristic", FunctionDescriptor.of(JAVA_INT,
                ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, JAVA_INT, ADDRESS, ADDRESS));
        cublasLtMatmulAlgoCheck = lib.function("cublasLtMatmulAlgoCheck", FunctionDescriptor.of(JAVA_INT,
                ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS));
        cublasLtGetVersion = lib.function("cublasLtGetVersion", FunctionDescriptor.of(JAVA_LONG));
        cublasLtMatmul = lib.function("cublasLtMatmul", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS,
                ADDRESS, JAVA_LONG, ADDRESS, JAVA_LONG, ADDRESS, ADDRESS, JAVA_LONG, ADDRESS, JAVA_LONG, ADDRESS,
                ADDRESS, JAVA_LONG, JAVA_LONG, ADDRESS));
        cublasLtGetStatusName = lib.function("cublasLtGetStatusName", FunctionDescriptor.of(ADDRESS, JAVA_INT));
        cublasLtGetStatusString = lib.function("cublasLtGetStatusString", FunctionDescriptor.of(ADDRESS, JAVA_INT));
    }

    MemorySegment create() {
        return created("cublasLtCreate", cublasLtCreate);
    }

    void destroy(MemorySegment handle) {
        check("cublasLtDestroy", call(cublasLtDestroy, handle));
    }

    /** A product descriptor: sums in {@code computeType} (cublasComputeType_t), alpha and beta of {@code scaleType}. */
    MemorySegment createMatmulDescriptor(int computeType, int scaleType) {
        return created("cublasLtMatmulDescCreate", cublasLtMatmulDescCreate, computeType, scaleType);
    }

    /** Sets an int32 attribute (e.g. {@link #MATMUL_DESC_TRANSA}) of a product descriptor. */
    void setMatmulAttribute(MemorySegment descriptor, int attribute, int value) {
        try (Arena arena = Arena.ofConfined()) {
            check("cublasLtMatmulDescSetAttribute", call(cublasLtMatmulDescSetAttribute, descriptor, attribute,
                    arena.allocateFrom(JAVA_INT, value), JAVA_INT.byteSize()));
        }
    }

    /** Sets a device-pointer attribute (e.g. {@link #MATMUL_DESC_BIAS_POINTER}) of a product descriptor. */
    void setMatmulPointer(MemorySegment descriptor, int attribute, long address) {
        try (Arena arena = Arena.ofConfined()) {
            check("cublasLtMatmulDescSetAttribute", call(cublasLtMatmulDescSetAttribute, descriptor, attribute,
                    arena.allocateFrom(JAVA_LONG, address), JAVA_LONG.byteSize()));
        }
    }

    void destroyMatmulDescriptor(MemorySegment descriptor) {
        check("cublasLtMatmulDescDestroy", call(cublasLtMatmulDescDestroy, descriptor));
    }

    /** A column-major matrix of {@code rows} × {@code cols} elements of {@code dataType}, columns {@code ld} apart. */
    MemorySegment createLayout(int dataType, long rows, long cols, long ld) {
        return created("cublasLtMatrixLayoutCreate", cublasLtMatrixLayoutCreate, dataType, rows, cols, ld);
    }

    void destroyLayout(MemorySegment layout) {
        check("cublasLtMatrixLayoutDestroy", call(cublasLtMatrixLayoutDestroy, layout));
    }

    MemorySegment createPreference() {
        return created("cublasLtMatmulPreferenceCreate", cublasLtMatmulPreferenceCreate);
    }

    /** Sets a uint64 attribute ({@link #PREFERENCE_MAX_WORKSPACE_BYTES}) of a search preference. */
    void setPreferenceAttribute(MemorySegment preference, int attribute, long value) {
        try (Arena arena = Arena.ofConfined()) {
            check("cublasLtMatmulPreferenceSetAttribute", call(cublasLtMatmulPreferenceSetAttribute, preference,
                    attribute, arena.allocateFrom(JAVA_LONG, value), JAVA_LONG.byteSize()));
        }
    }

    /** Sets a uint32 attribute (the alignments) of a search preference. */
    void setPreferenceAttribute(MemorySegment preference, int attribute, int value) {
        try (Arena arena = Arena.ofConfined()) {
            check("cublasLtMatmulPreferenceSetAttribute", call(cublasLtMatmulPreferenceSetAttribute, preference,
                    attribute, arena.allocateFrom(JAVA_INT, value), JAVA_INT.byteSize()));
        }
    }

    void destroyPreference(MemorySegment preference) {
        check("cublasLtMatmulPreferenceDestroy", call(cublasLtMatmulPreferenceDestroy, preference));
    }

    /**
     * Up to {@code count} algorithms for the product, best estimate first, those the heuristic
     * could not complete left out; their descriptors live in {@code arena}. Empty where none fits.
     */
    List<Candidate> heuristic(MemorySegment handle, MemorySegment descriptor, MemorySegment a, MemorySegment b,
                              MemorySegment c, MemorySegment d, MemorySegment preference, int count, Arena arena) {
        try (Arena scratch = Arena.ofConfined()) {
            MemorySegment results = scratch.allocate(HEURISTIC_RESULT_BYTES * count, 8);
            MemorySegment returned = scratch.allocate(JAVA_INT);
            int status = call(cublasLtMatmulAlgoGetHeuristic, handle, descriptor, a, b, c, d, preference, count,
                    results, returned);
            if (status == STATUS_NOT_SUPPORTED) return List.of();
            check("cublasLtMatmulAlgoGetHeuristic", status);
            return candidates(results, returned.get(JAVA_INT, 0), arena);
        }
    }

    /** The successful entries among the first {@code count} heuristic results, their algorithms copied into {@code arena}. */
    static List<Candidate> candidates(MemorySegment results, int count, Arena arena) {
        List<Candidate> candidates = new ArrayList<>(count);
        for (int i = 0; i < count; i++) {
            MemorySegment result = results.asSlice(i * HEURISTIC_RESULT_BYTES, HEURISTIC_RESULT_BYTES);
            if (result.get(JAVA_INT, RESULT_STATE) != STATUS_SUCCESS) continue;
            MemorySegment algorithm = arena.allocate(ALGORITHM_BYTES, 8);
            algorithm.copyFrom(result.asSlice(0, ALGORITHM_BYTES));
            candidates.add(new Candidate(algorithm, result.get(JAVA_LONG, RESULT_WORKSPACE),
                    result.get(JAVA_FLOAT, RESULT_WAVES)));
        }
        return candidates;
    }

    /** CUBLASLT_ALGO_CONFIG_CLUSTER_SHAPE_ID: a uint16_t cublasLtClusterShape_t. */
    private static final int ALGO_CONFIG_CLUSTER_SHAPE = 8;

    /**
     * A copy of {@code algorithm} (in {@code arena}) that runs its thread blocks in clusters of
     * {@code clusterShape} (a cublasLtClusterShape_t), or null where the library refuses the setting.
     * Whether the product accepts it is for {@link #check} to say.
     */
    MemorySegment withClusterShape(MemorySegment algorithm, short clusterShape, Arena arena) {
        MemorySegment copy = arena.allocate(ALGORITHM_BYTES, 8).copyFrom(algorithm);
        try (Arena scratch = Arena.ofConfined()) {
            MemorySegment value = scratch.allocate(JAVA_SHORT);
            value.set(JAVA_SHORT, 0, clusterShape);
            int status = call(cublasLtMatmulAlgoConfigSetAttribute, copy, ALGO_CONFIG_CLUSTER_SHAPE, value, JAVA_SHORT.byteSize());
            return status == STATUS_SUCCESS ? copy : null;
        }
    }

    /**
     * The workspace {@code algorithm} needs for the product, or -1 where the library does not
     * accept it for these descriptors (e.g. one kept from another cuBLASLt build).
     */
    long check(MemorySegment handle, MemorySegment descriptor, MemorySegment a, MemorySegment b, MemorySegment c,
               MemorySegment d, MemorySegment algorithm) {
        try (Arena scratch = Arena.ofConfined()) {
            MemorySegment result = scratch.allocate(HEURISTIC_RESULT_BYTES, 8);
            int status = call(cublasLtMatmulAlgoCheck, handle, descriptor, a, b, c, d, algorithm, result);
            return status == STATUS_SUCCESS ? result.get(JAVA_LONG, RESULT_WORKSPACE) : -1;
        }
    }

    /** The library's version number (cublasLtGetVersion: major · 10000 + minor · 100 + patch). */
    long version() {
        try {
            return (long) cublasLtGetVersion.invokeExact();
        } catch (Throwable t) {
            throw NativeLibrary.unexpected(t);
        }
    }

    /**
     * {@code D = alpha · op(A) · op(B) + beta · C} by {@code algorithm}, queued on {@code stream};
     * alpha and beta point to host values of the descriptor's scale type.
     */
    void matmul(MemorySegment handle, MemorySegment descriptor, MemorySegment alpha, long a, MemorySegment aLayout,
                long b, MemorySegment bLayout, MemorySegment beta, long c, MemorySegment cLayout, long d,
                MemorySegment dLayout, MemorySegment algorithm, long workspace, long workspaceBytes,
                MemorySegment stream) {
        int status;
        try {
            status = (int) cublasLtMatmul.invokeExact(handle, descriptor, alpha, a, aLayout, b, bLayout, beta, c,
                    cLayout, d, dLayout, algorithm, workspace, workspaceBytes, stream);
        } catch (Throwable t) {
            throw NativeLibrary.unexpected(t);
        }
        check("cublasLtMatmul", status);
    }

    /** Calls a create function that returns its object through its first argument. */
    private MemorySegment created(String name, MethodHandle function, Object... arguments) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(ADDRESS);
            Object[] all = new Object[arguments.length + 1];
            all[0] = out;
            System.arraycopy(arguments, 0, all, 1, arguments.length);
            check(name, call(function, all));
            return out.get(ADDRESS, 0);
        }
    }

    private void check(String call, int status) {
        if (status == STATUS_SUCCESS) return;
        throw new CudaException(call, text(cublasLtGetStatusName, status, "CUBLAS status " + status),
                text(cublasLtGetStatusString, status, ""));
    }

    private static String text(MethodHandle function, int status, String fallback) {
        try {
            return ((MemorySegment) function.invokeExact(status)).reinterpret(256).getString(0);
        } catch (Throwable t) {
            return fallback;
        }
    }
}
