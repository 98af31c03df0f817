package dev.jvllm.cpu;

import dev.jvllm.spi.Activation;
import dev.jvllm.weights.DType;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.lang.foreign.MemorySegment;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The arithmetic inner loops of the CPU kernels: float32 activations in arrays, weights and
 * cached keys and values in memory segments (positions are element indices). The kernels in {@link CpuBackend} decide what to compute and
 * split the work between threads; these loops do the per-element arithmetic, with the Vector API
 * when the {@code jdk.incubator.vector} module is present ({@code VectorLoops}) and plainly
 * otherwise ({@link ScalarLoops}).
 */
interface InnerLoops {

    /** Forces the scalar loops even when the Vector API is available (for tests of both paths). */
    String FORCE_SCALAR_PROPERTY = "jvllm.cpu.scalar";

    /** Which implementation this is, for logs ("Vector API, 16 float lanes ..."). */
    String description();

    /** The loops that read weights of {@code type} (F32, BF16 or F16). */
    WeightLoops weights(DType type);

    /** The register-tiled microkernel of matrix-matrix products against packed panels. */
    PanelLoops panels();

    /** {@code Σ k[kIndex + i] · q[qIndex + i]}: a query against a cached key. */
    float dot(MemorySegment k, long kIndex, float[] q, int qIndex, int n);

    /** {@code y[i] += alpha · v[vIndex + i]} for {@code i < n}: a weighted cached value. */
    void addScaled(float alpha, MemorySegment v, long vIndex, float[] y, int n);

    /**
     * Several queries against several cached keys: {@code out[outIndex + h·outStride + j] =
     * Σ_i k[rows[rowIndex + j] + kOffset + i] · q[qIndex + h·qStride + i]} for {@code h < heads},
     * {@code j < count}, {@code i < n}. Each key row is read once for all the queries (the query
     * heads of a grouped-query group).
     */
    void rowDots(MemorySegment k, long[] rows, int rowIndex, long kOffset, int count, float[] q, int qIndex, int qStride,
                 int heads, int n, float[] out, int outIndex, int outStride);

    /**
     * Several weighted sums of the same cached value rows: {@code out[outIndex + h·outStride + i] =
     * scales[h] · Σ_j p[pIndex + h·pStride + j] · v[rows[rowIndex + j] + vOffset + i]} for {@code h < heads},
     * {@code i < n}, summed over {@code j < count} in order. Each value row is read once for all the
     * heads, and the sums stay in registers across the rows.
     */
    void weightedRows(float[] p, int pIndex, int pStride, int heads, MemorySegment v, long[] rows, int rowIndex, long vOffset,
                      int count, int n, float[] scales, float[] out, int outIndex, int outStride);

    /** {@code Σ x[i]} over the n elements at {@code index}. */
    float sum(float[] x, int index, int n);

    /** {@code Σ (x[i] - center)²} over the n elements at {@code index}. */
    float sumOfSquares(float[] x, int index, int n, float center);

    /** {@code out[i] = (x[i] - center) · scale · weight[i] (+ bias[i])}; bias may be null. */
    void normalize(float[] x, int xIndex, float center, float scale, float[] weight, float[] bias,
                   float[] out, int outIndex, int n);

    /** {@code out[i] = a[i] + b[i]}. */
    void add(float[] a, int aIndex, float[] b, int bIndex, float[] out, int outIndex, int n);

    /** {@code out[i] = silu(gate[i]) · up[i]} with {@code silu(g) = g / (1 + e^-g)}. */
    void siluMul(float[] gate, int gateIndex, float[] up, int upIndex, float[] out, int outIndex, int n);

    /** {@code out[outIndex + i] = fn(x[xIndex + i])} for {@code i < n}. */
    void activation(Activation fn, float[] x, int xIndex, float[] out, int outIndex, int n);

    /** {@code max(a[index..index + n))}. */
    float max(float[] a, int index, int n);

    /**
     * The position (counted from {@code index}) of the first greatest of the n elements at
     * {@code index}, as a scan that keeps an element only when it is greater than the best so far:
     * NaN is never chosen, and 0 is returned when no element is greater than negative infinity.
     */
    int argmax(float[] a, int index, int n);

    /** {@code a[i] = e^(a[i] - shift)} in place for {@code index <= i < index + n}; returns {@code Σ a[i]}. */
    float expShiftedAndSum(float[] a, int index, int n, float shift);

    /** {@code out[outIndex + i] = y[yIndex + i] · scale} for {@code i < n}. */
    void storeScaled(float[] y, int yIndex, float scale, float[] out, int outIndex, int n);

    /**
     * The loops to use here: the Vector API ones when the {@code jdk.incubator.vector} module is
     * in the boot layer and {@code -Djvllm.cpu.scalar=true} is not set, the scalar ones otherwise.
     * The choice is logged once.
     */
    static InnerLoops select() {
        InnerLoops loops;
        if (Boolean.getBoolean(FORCE_SCALAR_PROPERTY)) {
            loops = new ScalarLoops("forced by -D" + FORCE_SCALAR_PROPERTY + "=true");
        } else if (ModuleLayer.boot().findModule("jdk.incubator.vector").isEmpty()) {
            loops = new ScalarLoops("module jdk.incubator.vector is absent; add --add-modules jdk.incubator.vector for SIMD");
        } else {
            loops = Selection.loadVectorLoops();
        }
        Selection.logOnce(loops);
        return loops;
    }

    /** Loading and logging behind {@link #select()}. */
    final class Selection {
        private static final Logger LOG = LoggerFactory.getLogger(CpuBackend.class);
        private static final Set<String> LOGGED = ConcurrentHashMap.newKeySet();
        private static final String VECTOR_LOOPS = "dev.jvllm.cpu.VectorLoops";

        private Selection() {
        }

        /** By name, so that no class of the Vector API is linked unless the module is there. */
        static InnerLoops loadVectorLoops() {
            try {
                return Class.forName(VECTOR_LOOPS).asSubclass(InnerLoops.class).getDeclaredConstructor().newInstance();
            } catch (ReflectiveOperationException | LinkageError | RuntimeException e) {
                LOG.warn("CPU backend cannot use the Vector API ({}); using scalar loops", e.toString());
                return new ScalarLoops("the Vector API failed to load: " + e);
            }
        }

        static void logOnce(InnerLoops loops) {
            if (LOGGED.add(loops.description())) {
                LOG.info("CPU backend kernels: {}", loops.description());
            }
        }
    }
}
