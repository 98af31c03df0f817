package dev.jvllm.cpu;

import dev.jvllm.weights.DType;

import java.lang.foreign.MemorySegment;
import java.util.Arrays;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.ReentrantLock;

/**
 * {@code out = x · Wᵀ (+ bias)} with x [T, in] float32 and W [outFeatures, in] in F32, BF16 or
 * F16, split over output rows between the workers.
 *
 * <p>One token (a decode step) is a matrix-vector product bound by memory bandwidth: each weight
 * row is streamed once. While x fits the L1 cache beside the stream, one row at a time is
 * fastest (one long sequential stream); once x is wider, eight rows share each load of x, which
 * keeps x traffic from throttling the weight stream (measured on Zen 4 with 32 KiB of L1: for
 * 8192-wide BF16 rows, one row at a time reaches about half of a plain read of the same bytes
 * and eight rows about 95%, while 2048-wide rows are fastest one at a time).
 *
 * <p>Two tokens (a two-token prompt, a decode step of two sequences) take four weight rows at a
 * time against both ({@link #twoTokens}): each widened weight serves both tokens and each x load
 * four rows, so the step stays near the one-token stream instead of computing a padded block of
 * four tokens (measured on Zen 4, the 1B shape's two-token forward: about 0.7x the CPU time).
 *
 * <p>More tokens are taken in blocks of four against pairs of weight rows (eight sums in
 * registers: each weight load serves four tokens, each x load two rows), against three rows
 * where the loops have the registers (BF16 with AVX-512: twelve sums, each x load serving three
 * rows; a 16-sequence decode step of the 1B shape measured about 0.82x the CPU time of the pairs
 * on Zen 4, -Djvllm.cpu.threeRowTiles=false for comparisons; four rows, sixteen sums, were faster
 * in LinearBench but slower in the engine's prefill and were removed), and the rows of a tile
 * of about {@value #ROW_TILE_BYTES} bytes are reused from cache by every token block, so weights
 * come from memory once per call however many tokens there are.
 *
 * <p>From {@value #PANEL_MIN_TOKENS} tokens on, F32 weights are instead packed once into panels
 * ({@link WeightPanels}) and multiplied by a register-tiled outer-product microkernel
 * ({@link PanelLoops}): about 200 GFLOP/s on two Zen 4 cores at bge-small's shapes (384 × 384 to
 * 1536, 16 to 2048 tokens) against 20-60 for the tiles above, whose horizontal sums per output
 * and x reloads per row pair dominate at narrow widths. The packed copy costs as much heap as the
 * F32 weight again (bge-small: 85 MB), so it is capped at a quarter of the maximum heap per
 * kernel, and BF16 and F16 weights (LLM checkpoints, where a float copy would triple the resident
 * size) are not packed. From a panel's width of tokens on (32 with AVX-512: prefill) they take the
 * same microkernel the other way round ({@link #tokenPanelProduct}): x is packed into panels of
 * tokens and the weight rows, widened a chunk at a time into scratch, are broadcast against them;
 * about 20% less CPU time than the in-place tiles for the 128-token prefill of a 1B BF16 model.
 */
final class LinearKernel {

    /**
     * Inputs wider than this many floats (12 KiB) use the eight-row loop. Measured on a 32 KiB
     * L1: at 3072 both loops stream equally fast, at 4096 eight rows are 1.6x faster, at 1024 one
     * row is.
     */
    static final int WIDE_INPUT = 3072;
    static final int TOKEN_BLOCK = 4;
    static final long ROW_TILE_BYTES = 256 * 1024;
    /**
     * From this many tokens F32 weights are packed into panels ({@link PanelProduct}); fewer
     * read the checkpoint's rows in place.
     */
    static final int PANEL_MIN_TOKENS = 8;
    static final int ROW_BLOCK = 16 * PanelLoops.ROWS;
    static final long PANEL_BLOCK_BYTES = 256 * 1024;
    /** Inputs of {@link #tokenPanelProduct} are taken this many at a time: six widened rows of them fit L1. */
    static final int DEPTH_CHUNK = 512;
    /** {@code -Djvllm.cpu.twoTokenRows=false} gives two tokens the four-token tiles, for comparisons. */
    private static final boolean TWO_TOKEN_ROWS = Boolean.parseBoolean(System.getProperty("jvllm.cpu.twoTokenRows", "true"));
    /** {@code -Djvllm.cpu.tokenPanels=false} keeps the in-place tiles at every token count, for comparisons. */
    private static final boolean TOKEN_PANELS = Boolean.parseBoolean(System.getProperty("jvllm.cpu.tokenPanels", "true"));
    /** Fewer weight elements than this per chunk are not worth a hand-off to another thread. */
    private static final int MIN_CHUNK_ELEMENTS = 1 << 16;
    /**
     * Most bytes of weights a worker claims at a time in a matrix-vector product (a decode step),
     * so that the first worker to finish a product waits for at most this much of another's. The
     * pool's default, a quarter of each worker's share, is 1-66 MB per claim on the 1B shape: on
     * 2 cores of Zen 4 the caller waited 4-12 ms per decode step at the end of the products, and
     * about 1 ms with claims of 256 KiB (each claim an atomic add, about 10 000 a step).
     */
    static final long MATVEC_CHUNK_BYTES = Long.getLong("jvllm.cpu.matvecChunkBytes", 256 * 1024);

    private final InnerLoops loops;
    private final WorkerPool pool;
    /** Most bytes of packed panels this kernel keeps; weights past it use the in-place tiles. */
    private final long panelBudget;
    private final AtomicLong panelBytes = new AtomicLong();
    /** Guards {@link #tokenPanels}, the packed x of the product in progress. */
    private final ReentrantLock tokenPanelLock = new ReentrantLock();
    private float[] tokenPanels = new float[0];

    /** A kernel whose packed panels may take up to a quarter of the maximum heap. */
    LinearKernel(InnerLoops loops, WorkerPool pool) {
        this(loops, pool, Runtime.getRuntime().maxMemory() / 4);
    }

    LinearKernel(InnerLoops loops, WorkerPool pool, long panelBudget) {
        this.loops = loops;
        this.pool = pool;
        this.panelBudget = panelBudget;
    }

    /**
     * Work on a finished block of output, done by the thread that computed it while the block is
     * still in cache (an activation, a residual addition): the elementwise pass after a product
     * then costs no extra trip through memory and no extra hand-off between threads.
     */
    @FunctionalInterface
    interface Epilogue {
        /** Transforms {@code out[at, at + n)}: output row {@code row}, columns {@code [column, column + n)}. */
        void apply(int row, int column, float[] out, int at, int n);
    }

    void run(CpuTensor x, CpuTensor weight, CpuTensor bias, CpuTensor out) {
        run(x, weight, bias, out, null);
    }

    /** {@code out = x · Wᵀ (+ bias)}, then {@code epilogue} (if not null) over all of out. */
    void run(CpuTensor x, CpuTensor weight, CpuTensor bias, CpuTensor out, Epilogue epilogue) {
        WeightPanels panels = x.rows() >= PANEL_MIN_TOKENS && weight.dtype() == DType.F32 ? panels(weight) : null;
        if (panels != null) {
            panelProduct(x, panels, bias, out, epilogue);
            return;
        }
        if (x.rows() == 1) {
            matrixVector(x, weight, bias, out);
        } else if (x.rows() == 2 && TWO_TOKEN_ROWS) {
            twoTokens(x, weight, bias, out);
        } else if (TOKEN_PANELS && x.rows() >= tokenPanelMinTokens()) {
            tokenPanelProduct(x, weight, bias, out);
        } else {
            matrixMatrix(x, weight, bias, out);
        }
        if (epilogue != null) {
            int cols = out.cols();
            pool.forEach(out.rows(), Math.max(1, MIN_CHUNK_ELEMENTS / Math.max(1, cols)), (first, end, worker) -> {
                for (int row = first; row < end; row++) {
                    epilogue.apply(row, 0, out.floats(), out.arrayIndex(row), cols);
                }
            });
        }
    }

    /**
     * From one full panel of tokens (32 with AVX-512, 16 with AVX2) weights read in place take
     * {@link #tokenPanelProduct}. Fewer keep the in-place tiles: at 16 tokens with AVX-512 a panel
     * would be half padding, and neither a one-vector panel (twelve rows, one broadcast per FMA)
     * nor pairs of depths in one broadcast beat the two-row tile in the engine (measured).
     */
    private int tokenPanelMinTokens() {
        return loops.panels().width();
    }

    /**
     * x · Wᵀ computed as its transpose W · xᵀ on the panel microkernel, for weights read in place
     * (BF16, F16, and F32 past the panel budget): x, small, is packed once per call into panels
     * of tokens ({@code xᵀ} depth-major, zero-padded), and each block of weight rows is widened
     * once, a chunk of the input at a time, into the worker's scratch and broadcast against them.
     * A widened weight serves every token of a panel from a register, no horizontal sums are
     * needed, and the weights come from memory once per call, in one sequential stream per row.
     */
    private void tokenPanelProduct(CpuTensor x, CpuTensor weight, CpuTensor bias, CpuTensor out) {
        PanelLoops tile = loops.panels();
        int width = tile.width();
        int tokens = x.rows();
        int in = weight.cols();
        int outFeatures = weight.rows();
        int panelCount = (tokens + width - 1) / width;
        WeightLoops rows = loops.weights(weight.dtype());
        MemorySegment w = weight.segment();
        float[] outs = out.floats();
        int tiles = (outFeatures + PanelLoops.ROWS - 1) / PanelLoops.ROWS;
        int tileFloats = PanelLoops.ROWS * width;
        tokenPanelLock.lock();
        try {
            float[] packed = packTokenPanels(x, width, panelCount);
            pool.forEach(tiles, 1, (firstTile, endTile, worker) -> {
                WorkerScratch scratch = pool.scratch(worker);
                float[] widened = scratch.weights(PanelLoops.ROWS * DEPTH_CHUNK);
                float[] partial = scratch.tile(tileFloats);
                float[] sums = scratch.accumulator(panelCount * tileFloats);
                for (int t = firstTile; t < endTile; t++) {
                    int firstRow = t * PanelLoops.ROWS;
                    int count = Math.min(PanelLoops.ROWS, outFeatures - firstRow);
                    // A chunk of the input at a time, so that the widened rows stay in L1.
                    for (int k0 = 0; k0 < in; k0 += DEPTH_CHUNK) {
                        int depth = Math.min(DEPTH_CHUNK, in - k0);
                        for (int r = 0; r < count; r++) {
                            rows.widen(w, weight.rowStart(firstRow + r) + k0, widened, r * depth, depth);
                        }
                        for (int p = 0; p < panelCount; p++) {
                            int panelAt = (p * in + k0) * width;
                            // The first chunk writes the sums, later ones add to them.
                            float[] into = k0 == 0 ? sums : partial;
                            int at = k0 == 0 ? p * tileFloats : 0;
                            tile.multiply(packed, panelAt, depth, widened, 0, depth, count, null, 0, into, at, width);
                            if (k0 > 0) {
                                loops.add(sums, p * tileFloats, partial, 0, sums, p * tileFloats, count * width);
                            }
                        }
                    }
                    for (int p = 0; p < panelCount; p++) {
                        int firstToken = p * width;
                        int panelTokens = Math.min(width, tokens - firstToken);
                        for (int r = 0; r < count; r++) {
                            int at = p * tileFloats + r * width;
                            float b = biasAt(bias, firstRow + r);
                            for (int j = 0; j < panelTokens; j++) {
                                outs[out.arrayIndex(firstToken + j) + firstRow + r] = sums[at + j] + b;
                            }
                        }
                    }
                }
            });
        } finally {
            tokenPanelLock.unlock();
        }
    }

    /** x's rows as panels of {@code width} tokens, {@code packed[(p × in + k) × width + j] = x[p × width + j][k]}, zero past the last. */
    private float[] packTokenPanels(CpuTensor x, int width, int panelCount) {
        int in = x.cols();
        int tokens = x.rows();
        int length = panelCount * in * width;
        if (tokenPanels.length < length) {
            tokenPanels = new float[length];
        }
        float[] packed = tokenPanels;
        float[] xs = x.floats();
        for (int p = 0; p < panelCount; p++) {
            int base = p * in * width;
            for (int j = 0; j < width; j++) {
                int token = p * width + j;
                if (token >= tokens) {
                    for (int k = 0; k < in; k++) {
                        packed[base + k * width + j] = 0f;
                    }
                    continue;
                }
                int row = x.arrayIndex(token);
                for (int k = 0; k < in; k++) {
                    packed[base + k * width + j] = xs[row + k];
                }
            }
        }
        return packed;
    }

    /**
     * The weight's panels, packed on first use if they fit one array and the budget (an F32
     * model far larger than bge-small, e.g. an LLM stored in F32, would otherwise double its
     * footprint on the heap); null if not.
     */
    private WeightPanels panels(CpuTensor weight) {
        int width = loops.panels().width();
        return weight.panels(() -> {
            long bytes = WeightPanels.bytes(weight.rows(), weight.cols(), width);
            if (bytes > WeightPanels.MAX_BYTES) {
                return null;
            }
            if (panelBytes.addAndGet(bytes) > panelBudget) {
                panelBytes.addAndGet(-bytes);
                return null;
            }
            return WeightPanels.pack(weight, width, loops.weights(weight.dtype()), pool);
        });
    }

    /**
     * Several products over the same x ({@code outs[i] = x · weights[i]ᵀ (+ biases[i])}, e.g. an
     * attention layer's query, key and value), their blocks of work shared out in one hand-off
     * between the workers where every weight has panels; one after another otherwise.
     */
    void runAll(CpuTensor x, CpuTensor[] weights, CpuTensor[] biases, CpuTensor[] outs) {
        PanelProduct[] products = new PanelProduct[weights.length];
        int[] firstUnits = new int[weights.length + 1];
        for (int i = 0; i < weights.length; i++) {
            WeightPanels panels = x.rows() >= PANEL_MIN_TOKENS && weights[i].dtype() == DType.F32 ? panels(weights[i]) : null;
            if (panels == null) {
                for (int j = 0; j < weights.length; j++) {
                    run(x, weights[j], biases[j], outs[j]);
                }
                return;
            }
            products[i] = new PanelProduct(x, panels, biases[i], outs[i], null);
            firstUnits[i + 1] = firstUnits[i] + products[i].units();
        }
        pool.forEachBlock(firstUnits[weights.length], (first, end, worker) -> {
            int product = 0;
            for (int unit = first; unit < end; unit++) {
                while (unit >= firstUnits[product + 1]) {
                    product++;
                }
                products[product].run(unit - firstUnits[product], pool.scratch(worker));
            }
        });
    }

    private void panelProduct(CpuTensor x, WeightPanels panels, CpuTensor bias, CpuTensor out, Epilogue epilogue) {
        PanelProduct product = new PanelProduct(x, panels, bias, out, epilogue);
        pool.forEachBlock(product.units(), (first, end, worker) -> {
            for (int unit = first; unit < end; unit++) {
                product.run(unit, pool.scratch(worker));
            }
        });
    }

    /**
     * x · Wᵀ on panels of W packed once (see {@link WeightPanels}), in units of work of up to
     * {@value #ROW_BLOCK} tokens × a run of panels of about {@value #PANEL_BLOCK_BYTES} bytes,
     * which stays in L2 while the unit's tokens pass over it six at a time (each group of six
     * token rows stays in L1 across the run).
     */
    private final class PanelProduct {
        private final CpuTensor x;
        private final WeightPanels panels;
        private final CpuTensor bias;
        private final CpuTensor out;
        private final Epilogue epilogue;
        private final PanelLoops tile = loops.panels();
        private final int rowBlocks;
        private final int panelsPerBlock;
        private final int panelBlocks;

        PanelProduct(CpuTensor x, WeightPanels panels, CpuTensor bias, CpuTensor out, Epilogue epilogue) {
            this.x = x;
            this.panels = panels;
            this.bias = bias;
            this.out = out;
            this.epilogue = epilogue;
            int panelCount = panels.count();
            this.rowBlocks = (x.rows() + ROW_BLOCK - 1) / ROW_BLOCK;
            long bytesPerPanel = (long) tile.width() * panels.depth() * Float.BYTES;
            int perBlock = (int) Math.clamp(PANEL_BLOCK_BYTES / bytesPerPanel, 1, panelCount);
            // Small products get shorter runs, so every worker has several units to balance with.
            while (perBlock > 1 && rowBlocks * ((panelCount + perBlock - 1) / perBlock) < 4 * pool.size()) {
                perBlock = (perBlock + 1) / 2;
            }
            this.panelsPerBlock = perBlock;
            this.panelBlocks = (panelCount + perBlock - 1) / perBlock;
        }

        int units() {
            return rowBlocks * panelBlocks;
        }

        void run(int unit, WorkerScratch scratch) {
            int width = tile.width();
            int depth = panels.depth();
            int outFeatures = panels.columns();
            float[] xs = x.floats();
            float[] outs = out.floats();
            int firstPanel = unit / rowBlocks * panelsPerBlock;
            int endPanel = Math.min(panels.count(), firstPanel + panelsPerBlock);
            int firstRow = unit % rowBlocks * ROW_BLOCK;
            int endRow = Math.min(x.rows(), firstRow + ROW_BLOCK);
            float[] init = bias == null ? null : paddedBias(bias, firstPanel * width, endPanel * width, outFeatures, scratch);
            for (int row = firstRow; row < endRow; row += PanelLoops.ROWS) {
                int rows = Math.min(PanelLoops.ROWS, endRow - row);
                for (int p = firstPanel; p < endPanel; p++) {
                    int column = p * width;
                    int columns = Math.min(width, outFeatures - column);
                    int initAt = column - firstPanel * width;
                    if (columns == width) {
                        tile.multiply(panels.values(), panels.offset(p), depth, xs, x.arrayIndex(row), x.cols(), rows,
                                init, initAt, outs, out.arrayIndex(row) + column, out.cols());
                    } else {
                        float[] partial = scratch.tile(PanelLoops.ROWS * width);
                        tile.multiply(panels.values(), panels.offset(p), depth, xs, x.arrayIndex(row), x.cols(), rows,
                                init, initAt, partial, 0, width);
                        for (int r = 0; r < rows; r++) {
                            System.arraycopy(partial, r * width, outs, out.arrayIndex(row + r) + column, columns);
                        }
                    }
                }
                if (epilogue != null) {
                    int column = firstPanel * width;
                    int columns = Math.min(outFeatures, endPanel * width) - column;
                    for (int r = row; r < row + rows; r++) {
                        epilogue.apply(r, column, outs, out.arrayIndex(r) + column, columns);
                    }
                }
            }
        }
    }

    /** The bias of columns {@code [from, to)} as floats, zero past {@code columns}, in the worker's scratch. */
    private float[] paddedBias(CpuTensor bias, int from, int to, int columns, WorkerScratch scratch) {
        float[] values = scratch.weights(to - from);
        int present = Math.min(to, columns) - from;
        if (bias.inArray()) {
            System.arraycopy(bias.floats(), bias.offset() + from, values, 0, present);
        } else {
            loops.weights(bias.dtype()).widen(bias.segment(), from, values, 0, present);
        }
        Arrays.fill(values, present, to - from, 0f);
        return values;
    }

    private void matrixVector(CpuTensor x, CpuTensor weight, CpuTensor bias, CpuTensor out) {
        WeightLoops rows = loops.weights(weight.dtype());
        MemorySegment w = weight.segment();
        float[] xs = x.floats();
        int xAt = x.offset();
        float[] outs = out.floats();
        int outAt = out.offset();
        int in = weight.cols();
        int outFeatures = weight.rows();
        int blocks = (outFeatures + 7) / 8;
        long blockElements = 8L * Math.max(1, in);
        int grain = (int) Math.max(1, MIN_CHUNK_ELEMENTS / blockElements);
        // Small enough that every worker gets some, at most MATVEC_CHUNK_BYTES, at least the grain.
        long chunkBlocks = Math.min((blocks + pool.size() - 1) / pool.size(),
                MATVEC_CHUNK_BYTES / (blockElements * weight.dtype().byteSize()));
        int chunk = (int) Math.max(grain, chunkBlocks);
        boolean wide = in > WIDE_INPUT;
        pool.forEachChunk(blocks, chunk, (firstBlock, endBlock, worker) -> oneTokenRows(rows, w, in, xs, xAt,
                firstBlock * 8, Math.min(outFeatures, endBlock * 8), wide, bias, outs, outAt, pool.scratch(worker).dots));
    }

    /**
     * One token's sums over weight rows {@code [row, end)} into {@code outs} from {@code outAt}: eight rows
     * at a time where {@code eightRows} (each x element loaded once for the eight), the rest one at a time.
     */
    private static void oneTokenRows(WeightLoops rows, MemorySegment w, int in, float[] xs, int xAt, int row, int end,
                                     boolean eightRows, CpuTensor bias, float[] outs, int outAt, float[] dots) {
        if (eightRows) {
            for (; row + 8 <= end; row += 8) {
                rows.dotEightRows(w, (long) row * in, in, xs, xAt, in, dots);
                for (int r = 0; r < 8; r++) {
                    outs[outAt + row + r] = dots[r] + biasAt(bias, row + r);
                }
            }
        }
        for (; row < end; row++) {
            outs[outAt + row] = rows.dot(w, (long) row * in, xs, xAt, in) + biasAt(bias, row);
        }
    }

    /**
     * Two tokens' sums over weight rows {@code [row, end)}, four rows at a time (each weight element
     * widened once for both), the rest one at a time.
     */
    private static void twoTokenRows(WeightLoops rows, MemorySegment w, int in, float[] xs, int x0, int x1, int row, int end,
                                     CpuTensor bias, float[] outs, int out0, int out1, float[] dots) {
        for (; row + 4 <= end; row += 4) {
            rows.dotFourRowsTwoTokens(w, (long) row * in, in, xs, x0, x1, in, dots);
            for (int r = 0; r < 4; r++) {
                float b = biasAt(bias, row + r);
                outs[out0 + row + r] = dots[2 * r] + b;
                outs[out1 + row + r] = dots[2 * r + 1] + b;
            }
        }
        for (; row < end; row++) {
            rows.dotTwoTokens(w, (long) row * in, xs, x0, x1, in, dots);
            float b = biasAt(bias, row);
            outs[out0 + row] = dots[0] + b;
            outs[out1 + row] = dots[1] + b;
        }
    }

    /**
     * x · Wᵀ for exactly two tokens, four weight rows at a time in one pass over them (the rows
     * of a tail one at a time): the weights come from memory once, as in a decode step, and the
     * two x rows stay in cache beside them.
     */
    private void twoTokens(CpuTensor x, CpuTensor weight, CpuTensor bias, CpuTensor out) {
        WeightLoops rows = loops.weights(weight.dtype());
        MemorySegment w = weight.segment();
        float[] xs = x.floats();
        int x0 = x.arrayIndex(0);
        int x1 = x.arrayIndex(1);
        float[] outs = out.floats();
        int out0 = out.arrayIndex(0);
        int out1 = out.arrayIndex(1);
        int in = weight.cols();
        int outFeatures = weight.rows();
        int blocks = (outFeatures + 3) / 4;
        int grain = Math.max(1, MIN_CHUNK_ELEMENTS / (4 * Math.max(1, in)));
        pool.forEach(blocks, grain, (firstBlock, endBlock, worker) -> twoTokenRows(rows, w, in, xs, x0, x1,
                firstBlock * 4, Math.min(outFeatures, endBlock * 4), bias, outs, out0, out1, pool.scratch(worker).dots));
    }

    private void matrixMatrix(CpuTensor x, CpuTensor weight, CpuTensor bias, CpuTensor out) {
        WeightLoops rows = loops.weights(weight.dtype());
        boolean threeRows = rows.threeRowTiles();
        MemorySegment w = weight.segment();
        float[] xs = x.floats();
        float[] outs = out.floats();
        int tokens = x.rows();
        int in = weight.cols();
        int outFeatures = weight.rows();
        long rowBytes = (long) in * weight.dtype().byteSize();
        int tileRows = Math.clamp(ROW_TILE_BYTES / Math.max(1, rowBytes), 2, 64) & ~1;
        int tiles = (outFeatures + tileRows - 1) / tileRows;
        pool.forEach(tiles, 1, (firstTile, endTile, worker) -> {
            float[] dots = pool.scratch(worker).dots;
            int firstRow = firstTile * tileRows;
            int endRow = Math.min(outFeatures, endTile * tileRows);
            for (int tileStart = firstRow; tileStart < endRow; tileStart += tileRows) {
                int tileEnd = Math.min(endRow, tileStart + tileRows);
                for (int t = 0; t < tokens; t += TOKEN_BLOCK) {
                    int count = Math.min(TOKEN_BLOCK, tokens - t);
                    if (count < 3 && t > 0) {
                        // A last block of one or two tokens after full ones (a step of 1 + 4 tokens verifying four
                        // guesses): the tile's rows are in cache, so only those tokens' sums are worth making.
                        remainderTile(rows, w, in, xs, x, t, count, tileStart, tileEnd, bias, out, outs, dots);
                        continue;
                    }
                    // A short last block repeats its last token; the extra results are dropped.
                    int x0 = x.arrayIndex(t);
                    int x1 = x.arrayIndex(t + Math.min(1, count - 1));
                    int x2 = x.arrayIndex(t + Math.min(2, count - 1));
                    int x3 = x.arrayIndex(t + Math.min(3, count - 1));
                    int row = tileStart;
                    if (threeRows) {
                        for (; row + 3 <= tileEnd; row += 3) {
                            rows.dotThreeRowsFourTokens(w, (long) row * in, in, xs, x0, x1, x2, x3, in, dots);
                            storeTile(dots, 3, row, t, count, bias, out, outs);
                        }
                    }
                    for (; row < tileEnd; row += 2) {
                        boolean pair = row + 1 < tileEnd;
                        rows.dotTwoRowsFourTokens(w, (long) row * in, pair ? in : 0, xs, x0, x1, x2, x3, in, dots);
                        storeTile(dots, pair ? 2 : 1, row, t, count, bias, out, outs);
                    }
                }
            }
        });
    }

    /**
     * The sums of tokens {@code t} and (where {@code count} is 2) {@code t + 1} over weight rows
     * {@code [tileStart, tileEnd)}, one token eight rows at a time, two tokens four rows at a time.
     * Measured before (a padded block of four for the fifth token of a step) a step of 5 tokens of a 1B
     * BF16 model cost 1.7x a one-token step on 2 cores, one of 4 tokens 1.2x.
     */
    private static void remainderTile(WeightLoops rows, MemorySegment w, int in, float[] xs, CpuTensor x, int t, int count,
                                      int tileStart, int tileEnd, CpuTensor bias, CpuTensor out, float[] outs, float[] dots) {
        if (count == 1) {
            oneTokenRows(rows, w, in, xs, x.arrayIndex(t), tileStart, tileEnd, true, bias, outs, out.arrayIndex(t), dots);
        } else {
            twoTokenRows(rows, w, in, xs, x.arrayIndex(t), x.arrayIndex(t + 1), tileStart, tileEnd, bias, outs,
                    out.arrayIndex(t), out.arrayIndex(t + 1), dots);
        }
    }

    /**
     * Stores a tile's sums, {@code dots[r × 4 + k]} for weight rows {@code row + r} ({@code r <
     * tileRows}) and tokens {@code t + k} ({@code k < count}; a padded token's sums are dropped),
     * each plus its row's bias.
     */
    private static void storeTile(float[] dots, int tileRows, int row, int t, int count, CpuTensor bias, CpuTensor out,
                                  float[] outs) {
        for (int r = 0; r < tileRows; r++) {
            float b = biasAt(bias, row + r);
            for (int k = 0; k < count; k++) {
                outs[out.arrayIndex(t + k) + row + r] = dots[r * 4 + k] + b;
            }
        }
    }

    private static float biasAt(CpuTensor bias, int index) {
        return bias == null ? 0f : bias.get(index);
    }
}
