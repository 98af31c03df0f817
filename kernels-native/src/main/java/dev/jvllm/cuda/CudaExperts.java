package dev.jvllm.cuda;

import dev.jvllm.JvllmException;
import dev.jvllm.spi.ExpertWeights;
import dev.jvllm.weights.DType;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;

import static java.lang.foreign.ValueLayout.JAVA_LONG;

/**
 * Mixture-of-experts layers on the device (moe.cu), for {@link CudaBackend}: routing, then the
 * routed experts as a fixed sequence of launches whatever the routing — group the token choices
 * by expert, gate and up products with SiLU · up fused, down products, and the per-token weighted
 * sum. Nothing is read back and every size is known on the host, so the sequence can be captured
 * in a CUDA graph. Decode-sized batches take matrix-vector kernels that read each chosen expert's
 * weight rows once; larger 16-bit batches take grouped tensor-core tiles.
 */
final class CudaExperts {

    /** MOE_MAX_EXPERTS of moe.cu (routing keeps a row of logits in one warp's registers). */
    private static final int MAX_EXPERTS = 256;
    /** One lane holds each chosen weight until they are normalized. */
    private static final int MAX_TOP_K = 32;
    /** MOE_WARPS of moe.cu: a warp per weight row. */
    private static final int WARPS = 4;
    /** MOE_TILE_ROWS and MOE_TILE_COLS of moe.cu. */
    private static final int TILE = 64;
    private static final int GROUPING_THREADS = 1024;
    /**
     * Batches of at most this many tokens take the matrix-vector kernels, whose cost is reading the
     * chosen experts' weights once; larger 16-bit ones the tensor-core tiles. The matrix-vector
     * kernels compute on CUDA cores, a warp per weight row for every choice of its expert: on an
     * H100 (8-layer Mixtral shape, CUDA graphs) a 16-sequence decode step took 23.7 ms with them
     * and 11.8 ms with the tiles, 64 sequences 104.7 ms against 15.5 ms; a single sequence is the
     * same either way (3.6 ms).
     */
    private static final int MATRIX_VECTOR_MAX_TOKENS = Integer.getInteger("jvllm.cuda.expertRowsMaxTokens", 8);

    /**
     * The experts as one device table of 3E weight addresses (gates, ups, downs), the weights kept
     * referenced so that they stay allocated.
     *
     * @param aligned every row starts on 16 bytes, so kernels read them in 16-byte pieces
     */
    record Experts(DeviceBuffer table, List<CudaTensor> weights, int count, int hidden, int intermediate,
                   boolean aligned) implements ExpertWeights {

        long gates() {
            return table.address();
        }

        long ups() {
            return table.address() + (long) count * Long.BYTES;
        }

        long downs() {
            return table.address() + 2L * count * Long.BYTES;
        }
    }

    private final CudaContext context;
    private final DeviceMemory memory;
    private final KernelLauncher kernels;
    private final DeviceErrors errors;
    private final DType activationType;
    /** One work area for every layer and step, so that a captured pass replays on the same buffers. */
    private final KeptBuffer work;

    CudaExperts(CudaContext context, DeviceMemory memory, KernelLauncher kernels, DeviceErrors errors,
                DType activationType) {
        this.context = context;
        this.memory = memory;
        this.kernels = kernels;
        this.errors = errors;
        this.activationType = activationType;
        this.work = new KeptBuffer(memory, 0);
    }

    /** Uploads the table of the experts' weight addresses (shapes already checked). */
    Experts prepare(List<CudaTensor> gates, List<CudaTensor> ups, List<CudaTensor> downs) {
        int count = gates.size();
        if (count > MAX_EXPERTS) {
            throw new JvllmException("expertWeights: " + count + " experts; the CUDA kernels route at most " + MAX_EXPERTS);
        }
        List<CudaTensor> weights = new ArrayList<>(3 * count);
        weights.addAll(gates);
        weights.addAll(ups);
        weights.addAll(downs);
        int hidden = gates.getFirst().cols(), intermediate = gates.getFirst().rows();
        boolean aligned = hidden % 8 == 0 && intermediate % 8 == 0;
        long bytes = 3L * count * Long.BYTES;
        DeviceBuffer table = memory.allocate(bytes, DeviceMemory.Kind.PERSISTENT);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment addresses = arena.allocate(bytes, 16);
            for (int i = 0; i < weights.size(); i++) {
                CudaTensor w = weights.get(i);
                if (w.dtype() != activationType) {
                    throw new IllegalArgumentException("expertWeights: " + w + " is not of the activation type "
                            + activationType + " (expert weights must come from the checkpoint)");
                }
                aligned &= w.address() % 16 == 0;
                addresses.setAtIndex(JAVA_LONG, i, w.address());
            }
            context.makeCurrent();
            context.driver.copyToDevice(table.address(), addresses, bytes, context.stream);
        }
        return new Experts(table, List.copyOf(weights), count, hidden, intermediate, aligned);
    }

    void route(CudaTensor logits, int topK, boolean normalize, CudaTensor experts, CudaTensor weights) {
        if (logits.cols() > MAX_EXPERTS || topK > MAX_TOP_K) {
            throw new JvllmException("routeSoftmaxTopK: top " + topK + " of " + logits.cols()
                    + " experts; the CUDA kernel routes at most " + MAX_TOP_K + " of " + MAX_EXPERTS);
        }
        context.makeCurrent();
        kernels.launch(Kernel.MOE_ROUTE_SOFTMAX_TOPK, logits.rows(), 32,
                logits, logits.cols(), topK, normalize ? 1 : 0, experts, weights);
    }

    void feedForward(CudaTensor x, Experts experts, CudaTensor expertIds, CudaTensor weights, CudaTensor out) {
        int tokens = x.rows(), topK = expertIds.cols(), choices = tokens * topK;
        int count = experts.count(), hidden = experts.hidden(), intermediate = experts.intermediate();
        if (tokens == 0) return;
        context.makeCurrent();
        // One kept work area for every layer and step (all on one stream), so that a captured
        // pass replays on the same buffers: starts, order, intermediate rows, expert outputs.
        long element = activationType.byteSize();
        long startsAt = 0;
        long orderAt = align(startsAt + (count + 1L) * Integer.BYTES);
        long activatedAt = align(orderAt + (long) choices * Integer.BYTES);
        long resultsAt = align(activatedAt + (long) choices * intermediate * element);
        DeviceBuffer area = work.atLeast(resultsAt + (long) choices * hidden * element);
        // Views, not raw addresses: a graph captured with them holds the area they view.
        CudaTensor starts = view(area, startsAt, DType.I32, count + 1, "expert starts");
        CudaTensor order = view(area, orderAt, DType.I32, choices, "choices by expert");
        CudaTensor activated = view(area, activatedAt, activationType, (long) choices * intermediate, "expert activations");
        CudaTensor results = view(area, resultsAt, activationType, (long) choices * hidden, "expert outputs");
        group(expertIds, choices, count, starts, order);
        boolean vectorized = experts.aligned() && x.address() % 16 == 0;
        if (activationType != DType.F32 && vectorized && tokens > MATRIX_VECTOR_MAX_TOKENS) {
            int tiles = (tokens + TILE - 1) / TILE;
            kernels.launchGrid(Kernel.MOE_GATE_UP_TILES, count * tiles, (intermediate + TILE - 1) / TILE, 32 * WARPS,
                    x, experts.gates(), experts.ups(), starts, order, topK, tiles, hidden, intermediate, activated);
            kernels.launchGrid(Kernel.MOE_DOWN_TILES, count * tiles, (hidden + TILE - 1) / TILE, 32 * WARPS,
                    activated, experts.downs(), starts, order, tiles, hidden, intermediate, results);
        } else {
            int pieces = vectorized ? 1 : 0;
            kernels.launchGrid(Kernel.MOE_GATE_UP_ROWS, (intermediate + WARPS - 1) / WARPS, count, 32 * WARPS,
                    x, experts.gates(), experts.ups(), starts, order, topK, hidden, intermediate, pieces, activated);
            kernels.launchGrid(Kernel.MOE_DOWN_ROWS, (hidden + WARPS - 1) / WARPS, count, 32 * WARPS,
                    activated, experts.downs(), starts, order, hidden, intermediate, pieces, results);
        }
        combine(results, expertIds, weights, count, hidden, out);
    }

    /** The choices of expertIds grouped by expert: per-expert {@code starts} ([E + 1]) and the choices in that {@code order}. */
    void group(CudaTensor expertIds, int choices, int count, CudaTensor starts, CudaTensor order) {
        context.makeCurrent();
        kernels.launch(Kernel.MOE_GROUP_BY_EXPERT, 1, GROUPING_THREADS,
                expertIds, choices, count, starts, order, errors.buffer());
    }

    /** out[t] = Σ_j weights[t, j] · results[t·k + j], in the order of j (results in choice order). */
    void combine(CudaTensor results, CudaTensor expertIds, CudaTensor weights, int count, int hidden, CudaTensor out) {
        kernels.launch(Kernel.MOE_COMBINE, expertIds.rows(), CudaBackend.rowThreads(hidden),
                results, expertIds, weights, weights.typeCode(), count, expertIds.cols(), hidden, out);
    }

    private static long align(long offset) {
        return (offset + 15) & ~15L;
    }

    private static CudaTensor view(DeviceBuffer area, long offset, DType type, long elements, String name) {
        return new CudaTensor(area, offset, type, 1, Math.toIntExact(elements), name);
    }

    void addSigmoidGatedRows(CudaTensor source, CudaTensor gate, CudaTensor out) {
        if (source.rows() == 0) return;
        context.makeCurrent();
        kernels.launch(Kernel.ADD_SIGMOID_GATED_ROWS, source.rows(), CudaBackend.rowThreads(source.cols()),
                source, gate, source.cols(), out);
    }
}
