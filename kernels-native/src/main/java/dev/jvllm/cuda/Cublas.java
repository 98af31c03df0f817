package dev.jvllm.cuda;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;

import static dev.jvllm.cuda.NativeLibrary.call;
import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

/** cuBLAS ({@code libcublas.so.13}): the matrix products of the linear layers. Column-major, as BLAS is. */
final class Cublas {

    static final int OP_N = 0;
    static final int OP_T = 1;
    /** cudaDataType values. */
    static final int R_32F = 0;
    static final int R_16F = 2;
    static final int R_16BF = 14;
    /** Plain float32 arithmetic: no TF32, so results match a float32 reference to rounding. */
    static final int COMPUTE_32F = 68;
    static final int GEMM_DEFAULT = -1;

    private static final NativeLibrary.LazyBinding<Cublas> BINDING =
            new NativeLibrary.LazyBinding<>(() -> new Cublas(NativeLibrary.open("libcublas.so.13")));

    /** cuBLAS, loaded once; throws the reason when it cannot be. */
    static Cublas get() {
        return BINDING.get();
    }

    private final MethodHandle cublasCreate;
    private final MethodHandle cublasDestroy;
    private final MethodHandle cublasSetStream;
    private final MethodHandle cublasSetWorkspace;
    private final MethodHandle cublasGemmEx;
    private final MethodHandle cublasGemmStridedBatchedEx;
    private final MethodHandle cublasGetStatusName;
    private final MethodHandle cublasGetStatusString;

    private Cublas(NativeLibrary lib) {
        cublasCreate = lib.function("cublasCreate_v2", FunctionDescriptor.of(JAVA_INT, ADDRESS));
        cublasDestroy = lib.function("cublasDestroy_v2", FunctionDescriptor.of(JAVA_INT, ADDRESS));
        cublasSetStream = lib.function("cublasSetStream_v2", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS));
        cublasSetWorkspace = lib.function("cublasSetWorkspace_v2", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG, JAVA_LONG));
        cublasGemmEx = lib.function("cublasGemmEx", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT,
                JAVA_INT, JAVA_INT, JAVA_INT, ADDRESS, JAVA_LONG, JAVA_INT, JAVA_INT, JAVA_LONG, JAVA_INT, JAVA_INT,
                ADDRESS, JAVA_LONG, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT));
        cublasGemmStridedBatchedEx = lib.function("cublasGemmStridedBatchedEx", FunctionDescriptor.of(JAVA_INT, ADDRESS,
                JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, ADDRESS, JAVA_LONG, JAVA_INT, JAVA_INT, JAVA_LONG,
                JAVA_LONG, JAVA_INT, JAVA_INT, JAVA_LONG, ADDRESS, JAVA_LONG, JAVA_INT, JAVA_INT, JAVA_LONG, JAVA_INT,
                JAVA_INT, JAVA_INT));
        cublasGetStatusName = lib.function("cublasGetStatusName", FunctionDescriptor.of(ADDRESS, JAVA_INT));
        cublasGetStatusString = lib.function("cublasGetStatusString", FunctionDescriptor.of(ADDRESS, JAVA_INT));
    }

    /** A handle whose work goes to {@code stream}. */
    MemorySegment create(MemorySegment stream) {
        MemorySegment handle;
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(ADDRESS);
            check("cublasCreate_v2", call(cublasCreate, out));
            handle = out.get(ADDRESS, 0);
        }
        check("cublasSetStream_v2", call(cublasSetStream, handle, stream));
        return handle;
    }

    /**
     * Gives the handle a workspace of its own, so that no product allocates one as it runs (NVIDIA
     * recommends 32 MiB on Hopper).
     */
    void setWorkspace(MemorySegment handle, long address, long bytes) {
        check("cublasSetWorkspace_v2", call(cublasSetWorkspace, handle, address, bytes));
    }

    void destroy(MemorySegment handle) {
        check("cublasDestroy_v2", call(cublasDestroy, handle));
    }

    /**
     * {@code C = alpha · op(A) · op(B) + beta · C} in column-major order; alpha and beta point to
     * host floats (the default pointer mode). A, B and C are device pointers.
     */
    void gemm(MemorySegment handle, int transA, int transB, int m, int n, int k, MemorySegment alpha,
              long a, int aType, int lda, long b, int bType, int ldb, MemorySegment beta,
              long c, int cType, int ldc, int computeType) {
        int status;
        try {
            status = (int) cublasGemmEx.invokeExact(handle, transA, transB, m, n, k, alpha, a, aType, lda, b, bType,
                    ldb, beta, c, cType, ldc, computeType, GEMM_DEFAULT);
        } catch (Throwable t) {
            throw NativeLibrary.unexpected(t);
        }
        check("cublasGemmEx", status);
    }

    /**
     * {@code batches} products {@code C_i = alpha · op(A_i) · op(B_i) + beta · C_i}, operand i
     * {@code stride} elements after operand i - 1 of its kind, as {@link #gemm}.
     */
    void gemmStridedBatched(MemorySegment handle, int transA, int transB, int m, int n, int k, MemorySegment alpha,
                            long a, int aType, int lda, long strideA, long b, int bType, int ldb, long strideB,
                            MemorySegment beta, long c, int cType, int ldc, long strideC, int batches, int computeType) {
        int status;
        try {
            status = (int) cublasGemmStridedBatchedEx.invokeExact(handle, transA, transB, m, n, k, alpha, a, aType, lda,
                    strideA, b, bType, ldb, strideB, beta, c, cType, ldc, strideC, batches, computeType, GEMM_DEFAULT);
        } catch (Throwable t) {
            throw NativeLibrary.unexpected(t);
        }
        check("cublasGemmStridedBatchedEx", status);
    }

    private void check(String call, int status) {
        if (status == 0) return;
        throw new CudaException(call, text(cublasGetStatusName, status, "CUBLAS status " + status),
                text(cublasGetStatusString, status, ""));
    }

    private static String text(MethodHandle function, int status, String fallback) {
        try {
            return ((MemorySegment) function.invokeExact(status)).reinterpret(256).getString(0);
        } catch (Throwable t) {
            return fallback;
        }
    }
}
