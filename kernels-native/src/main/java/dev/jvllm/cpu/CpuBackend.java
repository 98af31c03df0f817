package dev.jvllm.cpu;

import dev.jvllm.JvllmException;
import dev.jvllm.engine.ForwardBatch;
import dev.jvllm.spi.Activation;
import dev.jvllm.spi.AttentionParams;
import dev.jvllm.spi.Backend;
import dev.jvllm.spi.BackendOptions;
import dev.jvllm.spi.ExpertWeights;
import dev.jvllm.spi.KvCache;
import dev.jvllm.spi.KernelShapes;
import dev.jvllm.spi.KvCacheSpec;
import dev.jvllm.spi.Tensor;
import dev.jvllm.weights.DType;
import dev.jvllm.weights.WeightTensor;

import java.lang.foreign.MemorySegment;
import java.util.List;

/**
 * The CPU backend: float32 activations on the Java heap, weights read in place from the
 * memory-mapped checkpoint (F32, BF16 or F16, widened inside the kernels), a paged KV cache in
 * native memory, and kernels split over a fixed pool of threads.
 *
 * <p>The arithmetic runs on the Vector API when the {@code jdk.incubator.vector} module is present
 * and on scalar loops otherwise (see {@link InnerLoops#select()}). One thread drives a backend at
 * a time; kernels called from several threads are serialized by the worker pool.
 */
public final class CpuBackend implements Backend {

    /** The rows of the last {@link #argmaxRowsAsync}, which {@link #tokenIds} feeds from. */
    private int[] lastSampled;

    private static final int ELEMENTWISE_GRAIN = 1 << 15;

    private final WorkerPool pool;
    private final InnerLoops loops;
    private final LinearKernel linear;
    private final PagedAttentionKernel attention;
    private final EncoderAttentionKernel encoderAttention;
    private final ExpertKernels expertKernels;

    /** A backend with {@code options.threads()} workers (0: all available processors). */
    public CpuBackend(BackendOptions options) {
        this(options.threads() > 0 ? options.threads() : Runtime.getRuntime().availableProcessors(), InnerLoops.select());
    }

    CpuBackend(int threads, InnerLoops loops) {
        this.pool = new WorkerPool(threads);
        this.loops = loops;
        this.linear = new LinearKernel(loops, pool);
        this.attention = new PagedAttentionKernel(loops, pool);
        this.encoderAttention = new EncoderAttentionKernel(loops, pool);
        this.expertKernels = new ExpertKernels(loops, pool, linear);
    }

    /** Checked against merged weights (LoraTest). */
    @Override
    public boolean runsLoraAdapters() {
        return true;
    }

    @Override
    public String name() {
        return "cpu";
    }

    @Override
    public DType activationType() {
        return DType.F32;
    }

    /** Which inner loops this backend runs, e.g. "Vector API, 512-bit vectors of 16 float lanes". */
    public String kernelDescription() {
        return loops.description();
    }

    /** The number of threads kernels are split over, the caller included. */
    public int threads() {
        return pool.size();
    }

    // ---- memory ----------------------------------------------------------------------------

    @Override
    public Tensor weight(WeightTensor source) {
        DType type = source.dtype();
        if (type != DType.F32 && type != DType.BF16 && type != DType.F16) {
            throw new JvllmException("tensor '" + source.name() + "' is " + type
                    + "; the CPU backend reads F32, BF16 and F16 weights");
        }
        long cols = source.rank() == 0 ? 1 : source.dim(-1);
        long rows = cols == 0 ? 0 : source.elementCount() / cols;
        if (rows > Integer.MAX_VALUE || cols > Integer.MAX_VALUE) {
            throw new JvllmException("tensor '" + source.name() + "' has " + rows + " × " + cols
                    + " elements; the CPU backend needs both below 2^31");
        }
        long bytes = source.elementCount() * type.byteSize();
        if (source.data().byteSize() != bytes) {
            throw new JvllmException("tensor '" + source.name() + "' has " + source.data().byteSize()
                    + " bytes of data but its shape needs " + bytes);
        }
        return CpuTensor.ofSegment(source.data(), type, (int) rows, (int) cols, source.name());
    }

    @Override
    public Tensor constant(float[] values, int rows, int cols) {
        if ((long) rows * cols != values.length) {
            throw new IllegalArgumentException(values.length + " values do not fill " + rows + " × " + cols);
        }
        return CpuTensor.ofFloats(values.clone(), 0, rows, cols, "constant");
    }

    @Override
    public Tensor allocate(int rows, int cols) {
        long count = (long) rows * cols;
        if (rows < 0 || cols < 0 || count > Integer.MAX_VALUE - 8) {
            throw new JvllmException("cannot allocate " + rows + " × " + cols
                    + " activations: the CPU backend holds at most 2^31 - 9 floats per tensor");
        }
        return CpuTensor.ofFloats(new float[(int) count], 0, rows, cols, "activation");
    }

    @Override
    public Tensor indices(int[] values) {
        return CpuTensor.ofSegment(MemorySegment.ofArray(values.clone()), DType.I32, 1, values.length, "indices");
    }

    @Override
    public float[] toFloatArray(Tensor tensor) {
        CpuTensor t = cpu(tensor, "toFloatArray", "tensor");
        long count = t.elementCount();
        if (count > Integer.MAX_VALUE - 8) {
            throw new JvllmException(t + " is too large for a Java array");
        }
        int n = (int) count;
        float[] result = new float[n];
        if (t.dtype() == DType.I32) {
            for (int i = 0; i < n; i++) {
                result[i] = t.index(i);
            }
        } else {
            widen(t, 0, result, 0, n);
        }
        return result;
    }

    /**
     * Each row's argmax (greedy sampling's token) found where the logits are, with the vector
     * scan of {@link InnerLoops#argmax}: the default copied the logits out first (513 KB a decode
     * step at Llama 3's vocabulary, nearly all of what a decode step allocated) and scanned them
     * one element at a time.
     */
    @Override
    public int[] argmaxRows(Tensor tensor) {
        CpuTensor t = cpu(tensor, "argmaxRows", "tensor");
        if (!t.inArray()) {
            return Backend.super.argmaxRows(tensor);
        }
        int[] best = new int[t.rows()];
        for (int r = 0; r < best.length; r++) {
            best[r] = loops.argmax(t.floats(), t.arrayIndex(r), t.cols());
        }
        return best;
    }

    /**
     * The CPU computes a step before its forward pass returns, so a queued argmax is done at once;
     * it is kept for {@link #tokenIds}. The engine does not schedule ahead here ({@link #queuesWork}
     * is false: it would only delay each token by a step), but tests that pose this backend as a
     * queuing one run the engine's async path with it.
     */
    @Override
    public SampledRows argmaxRowsAsync(Tensor tensor) {
        return keptForTokenIds(argmaxRows(tensor));
    }

    /** Drawn on the host as the default does, and kept for {@link #tokenIds} as {@link #argmaxRowsAsync}'s rows are. */
    @Override
    public SampledRows sampleRowsAsync(Tensor tensor, PlainSampling sampling) {
        return keptForTokenIds(Backend.super.sampleRowsAsync(tensor, sampling).await());
    }

    /** {@code rows} as the ones {@link #tokenIds} feeds from, feedable until later rows replace them. */
    private SampledRows keptForTokenIds(int[] rows) {
        lastSampled = rows;
        return SampledRows.of(rows, () -> lastSampled == rows);
    }

    @Override
    public boolean feedsSampledTokens() {
        return true;
    }

    @Override
    public Tensor tokenIds(ForwardBatch batch) {
        int[] rows = batch.sampledTokenRows();
        if (rows == null) return indices(batch.tokenIds());
        int[] ids = batch.tokenIds().clone();
        for (int t = 0; t < ids.length; t++) {
            if (rows[t] < 0) continue;
            if (lastSampled == null || rows[t] >= lastSampled.length) {
                throw new JvllmException("token " + t + " takes sampled row " + rows[t] + " but the last argmax has "
                        + (lastSampled == null ? 0 : lastSampled.length) + " rows");
            }
            ids[t] = lastSampled[rows[t]];
        }
        return indices(ids);
    }

    @Override
    public KvCache allocateKvCache(KvCacheSpec spec) {
        return CpuKvCache.allocate(spec);
    }

    // ---- kernels ----------------------------------------------------------------------------

    @Override
    public void embedding(Tensor table, Tensor ids, Tensor out) {
        copyRows("embedding", cpu(table, "embedding", "table"), cpu(ids, "embedding", "ids"), cpu(out, "embedding", "out"));
    }

    @Override
    public void gatherRows(Tensor x, Tensor rows, Tensor out) {
        copyRows("gatherRows", cpu(x, "gatherRows", "x"), cpu(rows, "gatherRows", "rows"), cpu(out, "gatherRows", "out"));
    }

    /** {@code out[i] = source[indices[i]]} widened to float32. */
    private void copyRows(String kernel, CpuTensor source, CpuTensor indices, CpuTensor out) {
        requireActivation(kernel, "out", out);
        KernelShapes.checkGather(kernel, source, indices, out);
        int count = (int) indices.elementCount();
        int cols = source.cols();
        pool.forEach(count, Math.max(1, ELEMENTWISE_GRAIN / Math.max(1, cols)), (first, end, worker) -> {
            for (int i = first; i < end; i++) {
                int row = indices.index(i);
                if (row < 0 || row >= source.rows()) {
                    throw new IndexOutOfBoundsException(kernel + ": index " + row + " at " + i + " is outside the "
                            + source.rows() + " rows of " + source);
                }
                widen(source, source.rowStart(row), out.floats(), out.arrayIndex(i), cols);
            }
        });
    }

    @Override
    public void linear(Tensor x, Tensor weight, Tensor bias, Tensor out) {
        linear("linear", x, weight, bias, out, null);
    }

    @Override
    public void linears(Tensor x, Tensor[] weights, Tensor[] biases, Tensor[] outs) {
        String kernel = "linears";
        KernelShapes.checkLinears(weights, biases, outs);
        CpuTensor[] w = new CpuTensor[weights.length];
        CpuTensor[] b = new CpuTensor[weights.length];
        CpuTensor[] output = new CpuTensor[weights.length];
        for (int i = 0; i < weights.length; i++) {
            LinearOperands operands = linearOperands(kernel, x, weights[i], biases[i], outs[i]);
            w[i] = operands.weight();
            b[i] = operands.bias();
            output[i] = operands.out();
            for (int j = 0; j < i; j++) {
                if (overlap(output[j], output[i])) {
                    throw new IllegalArgumentException(kernel + ": outs " + output[j] + " and " + output[i] + " overlap");
                }
            }
        }
        linear.runAll(cpu(x, kernel, "x"), w, b, output);
    }

    @Override
    public void linearActivation(Activation fn, Tensor x, Tensor weight, Tensor bias, Tensor out) {
        linear("linearActivation", x, weight, bias, out,
                (row, column, values, at, n) -> loops.activation(fn, values, at, values, at, n));
    }

    @Override
    public void linearResidual(Tensor x, Tensor weight, Tensor bias, Tensor residual, Tensor out) {
        String kernel = "linearResidual";
        CpuTensor stream = cpu(residual, kernel, "residual");
        CpuTensor output = cpu(out, kernel, "out");
        checkElementwise(kernel, stream, stream, output);
        if (overlap(stream, output) || overlap(stream, cpu(x, kernel, "x"))) {
            throw new IllegalArgumentException(kernel + ": residual " + stream + " overlaps out or x");
        }
        float[] added = stream.floats();
        linear(kernel, x, weight, bias, out, (row, column, values, at, n) ->
                loops.add(values, at, added, stream.arrayIndex(row) + column, values, at, n));
    }

    private void linear(String kernel, Tensor x, Tensor weight, Tensor bias, Tensor out, LinearKernel.Epilogue epilogue) {
        LinearOperands operands = linearOperands(kernel, x, weight, bias, out);
        linear.run(operands.x(), operands.weight(), operands.bias(), operands.out(), epilogue);
    }

    /** The operands of one linear layer, checked: CPU tensors of matching shapes, out apart from x. */
    private record LinearOperands(CpuTensor x, CpuTensor weight, CpuTensor bias, CpuTensor out) {
    }

    private static LinearOperands linearOperands(String kernel, Tensor x, Tensor weight, Tensor bias, Tensor out) {
        CpuTensor input = cpu(x, kernel, "x");
        CpuTensor w = cpu(weight, kernel, "weight");
        CpuTensor b = bias == null ? null : cpu(bias, kernel, "bias");
        CpuTensor output = cpu(out, kernel, "out");
        requireActivation(kernel, "x", input);
        requireActivation(kernel, "out", output);
        KernelShapes.checkLinear(input, w, b, output);
        if (overlap(input, output)) {
            throw new IllegalArgumentException(kernel + ": out " + output + " overlaps its input x");
        }
        return new LinearOperands(input, w, b, output);
    }

    @Override
    public void rmsNorm(Tensor x, Tensor weight, float eps, float weightOffset, Tensor out) {
        CpuTensor input = cpu(x, "rmsNorm", "x");
        CpuTensor scale = cpu(weight, "rmsNorm", "weight");
        CpuTensor output = cpu(out, "rmsNorm", "out");
        int n = input.cols();
        checkRowwise("rmsNorm", input, scale, null, output);
        pool.forEach(input.rows(), Math.max(1, ELEMENTWISE_GRAIN / Math.max(1, n)), (first, end, worker) -> {
            float[] w = pool.scratch(worker).weights(n);
            widen(scale, 0, w, 0, n);
            if (weightOffset != 0f) {
                for (int i = 0; i < n; i++) {
                    w[i] += weightOffset;
                }
            }
            for (int row = first; row < end; row++) {
                float meanSquare = loops.sumOfSquares(input.floats(), input.arrayIndex(row), n, 0f) / n;
                float inverseRms = (float) (1.0 / Math.sqrt(meanSquare + eps));
                loops.normalize(input.floats(), input.arrayIndex(row), 0f, inverseRms, w, null,
                        output.floats(), output.arrayIndex(row), n);
            }
        });
    }

    @Override
    public void layerNorm(Tensor x, Tensor weight, Tensor bias, float eps, Tensor out) {
        CpuTensor input = cpu(x, "layerNorm", "x");
        CpuTensor scale = cpu(weight, "layerNorm", "weight");
        CpuTensor shift = bias == null ? null : cpu(bias, "layerNorm", "bias");
        CpuTensor output = cpu(out, "layerNorm", "out");
        int n = input.cols();
        checkRowwise("layerNorm", input, scale, shift, output);
        pool.forEach(input.rows(), Math.max(1, ELEMENTWISE_GRAIN / Math.max(1, n)), (first, end, worker) -> {
            WorkerScratch scratch = pool.scratch(worker);
            float[] w = scratch.weights(n);
            widen(scale, 0, w, 0, n);
            float[] b = null;
            if (shift != null) {
                b = scratch.accumulator(n);
                widen(shift, 0, b, 0, n);
            }
            for (int row = first; row < end; row++) {
                int at = input.arrayIndex(row);
                float mean = loops.sum(input.floats(), at, n) / n;
                float variance = loops.sumOfSquares(input.floats(), at, n, mean) / n;
                float inverseStd = (float) (1.0 / Math.sqrt(variance + eps));
                loops.normalize(input.floats(), at, mean, inverseStd, w, b, output.floats(), output.arrayIndex(row), n);
            }
        });
    }

    @Override
    public void add(Tensor a, Tensor b, Tensor out) {
        CpuTensor left = cpu(a, "add", "a");
        CpuTensor right = cpu(b, "add", "b");
        CpuTensor output = cpu(out, "add", "out");
        checkElementwise("add", left, right, output);
        pool.forEach((int) output.elementCount(), ELEMENTWISE_GRAIN, (first, end, worker) ->
                loops.add(left.floats(), left.offset() + first, right.floats(), right.offset() + first,
                        output.floats(), output.offset() + first, end - first));
    }

    @Override
    public void siluMul(Tensor gate, Tensor up, Tensor out) {
        CpuTensor g = cpu(gate, "siluMul", "gate");
        CpuTensor u = cpu(up, "siluMul", "up");
        CpuTensor output = cpu(out, "siluMul", "out");
        checkElementwise("siluMul", g, u, output);
        pool.forEach((int) output.elementCount(), ELEMENTWISE_GRAIN, (first, end, worker) ->
                loops.siluMul(g.floats(), g.offset() + first, u.floats(), u.offset() + first,
                        output.floats(), output.offset() + first, end - first));
    }

    @Override
    public void activation(Activation fn, Tensor x, Tensor out) {
        unary("activation", x, out, (input, output, first, end) -> loops.activation(fn, input.floats(),
                input.offset() + first, output.floats(), output.offset() + first, end - first));
    }

    @Override
    public void gatedActivation(Activation fn, Tensor gate, Tensor up, Tensor out) {
        CpuTensor g = cpu(gate, "gatedActivation", "gate");
        CpuTensor u = cpu(up, "gatedActivation", "up");
        CpuTensor output = cpu(out, "gatedActivation", "out");
        checkElementwise("gatedActivation", g, u, output);
        pool.forEach((int) output.elementCount(), ELEMENTWISE_GRAIN, (first, end, worker) ->
                PointwiseKernels.gated(fn, g, u, output, first, end));
    }

    @Override
    public void scale(Tensor x, float factor, Tensor out) {
        unary("scale", x, out, (input, output, first, end) -> PointwiseKernels.scale(input, factor, output, first, end));
    }

    @Override
    public void clamp(Tensor x, float limit, Tensor out) {
        unary("clamp", x, out, (input, output, first, end) -> PointwiseKernels.clamp(input, limit, output, first, end));
    }

    @Override
    public void softcap(Tensor x, float cap, Tensor out) {
        unary("softcap", x, out, (input, output, first, end) -> PointwiseKernels.softcap(input, cap, output, first, end));
    }

    /** One elementwise pass of x into out (out may be x), checked and split over the workers. */
    private void unary(String kernel, Tensor x, Tensor out, UnaryRange range) {
        CpuTensor input = cpu(x, kernel, "x");
        CpuTensor output = cpu(out, kernel, "out");
        checkElementwise(kernel, input, input, output);
        pool.forEach((int) output.elementCount(), ELEMENTWISE_GRAIN, (first, end, worker) ->
                range.run(input, output, first, end));
    }

    /** An elementwise kernel over elements [first, end) of its input and output. */
    @FunctionalInterface
    private interface UnaryRange {
        void run(CpuTensor input, CpuTensor output, int first, int end);
    }

    @Override
    public Tensor transposedWeight(WeightTensor source) {
        return PointwiseKernels.transposed(source);
    }

    @Override
    public void rotary(Tensor x, int heads, int headDim, int rotaryDim, boolean neoxStyle, Tensor cosSin,
                       Tensor positions) {
        CpuTensor input = cpu(x, "rotary", "x");
        CpuTensor table = cpu(cosSin, "rotary", "cosSin");
        CpuTensor pos = cpu(positions, "rotary", "positions");
        requireActivation("rotary", "x", input);
        KernelShapes.checkRotary(input, heads, headDim, rotaryDim, table, pos);
        int half = rotaryDim / 2;
        // Pairs are (i, i + half) in the GPT-NeoX layout and (2i, 2i + 1) in the GPT-J layout.
        int pairStride = neoxStyle ? 1 : 2;
        int partnerOffset = neoxStyle ? half : 1;
        float[] data = input.floats();
        pool.forEach(input.rows(), Math.max(1, ELEMENTWISE_GRAIN / Math.max(1, input.cols())), (first, end, worker) -> {
            for (int t = first; t < end; t++) {
                int position = pos.index(t);
                if (position < 0 || position >= table.rows()) {
                    throw new IndexOutOfBoundsException("rotary: position " + position + " of token " + t
                            + " is outside the " + table.rows() + " rows of " + table);
                }
                long tableRow = table.rowStart(position);
                for (int h = 0; h < heads; h++) {
                    int head = input.arrayIndex(t) + h * headDim;
                    for (int i = 0; i < half; i++) {
                        float cos = table.get(tableRow + i);
                        float sin = table.get(tableRow + half + i);
                        int a = head + i * pairStride;
                        int b = a + partnerOffset;
                        float x1 = data[a];
                        float x2 = data[b];
                        data[a] = x1 * cos - x2 * sin;
                        data[b] = x2 * cos + x1 * sin;
                    }
                }
            }
        });
    }

    @Override
    public void attention(Tensor q, Tensor k, Tensor v, KvCache cache, int layer, ForwardBatch batch,
                          AttentionParams params, Tensor out) {
        CpuTensor query = cpu(q, "attention", "q");
        CpuTensor key = cpu(k, "attention", "k");
        CpuTensor value = cpu(v, "attention", "v");
        CpuTensor output = cpu(out, "attention", "out");
        if (!(cache instanceof CpuKvCache pages)) {
            throw new IllegalArgumentException("attention: the KV cache " + cache + " was not made by the CPU backend");
        }
        for (CpuTensor t : new CpuTensor[]{query, key, value, output}) {
            requireActivation("attention", "input", t);
        }
        KernelShapes.checkAttention(query, key, value, pages.spec(), layer, batch, params, output);
        if (overlap(query, output)) {
            throw new IllegalArgumentException("attention: out " + output + " overlaps q");
        }
        attention.run(query, key, value, pages, layer, batch, params, output);
    }

    @Override
    public void encoderAttention(Tensor q, Tensor k, Tensor v, ForwardBatch batch, AttentionParams params, Tensor out) {
        CpuTensor query = cpu(q, "encoderAttention", "q");
        CpuTensor key = cpu(k, "encoderAttention", "k");
        CpuTensor value = cpu(v, "encoderAttention", "v");
        CpuTensor output = cpu(out, "encoderAttention", "out");
        for (CpuTensor t : new CpuTensor[]{query, key, value, output}) {
            requireActivation("encoderAttention", "input", t);
        }
        KernelShapes.checkEncoderAttention(query, key, value, batch, params, output);
        if (overlap(query, output) || overlap(key, output) || overlap(value, output)) {
            throw new IllegalArgumentException("encoderAttention: out " + output + " overlaps q, k or v");
        }
        encoderAttention.run(query, key, value, batch, params, output);
    }

    @Override
    public void crossAttention(Tensor q, Tensor keys, Tensor values, int[] ranges, int longestRange, ForwardBatch batch,
                               AttentionParams params, Tensor out) {
        String kernel = "crossAttention";
        CpuTensor query = cpu(q, kernel, "q");
        CpuTensor key = cpu(keys, kernel, "keys");
        CpuTensor value = cpu(values, kernel, "values");
        CpuTensor output = cpu(out, kernel, "out");
        for (CpuTensor t : new CpuTensor[]{query, key, value, output}) {
            requireActivation(kernel, "input", t);
        }
        KernelShapes.checkCrossAttention(query, key, value, ranges, longestRange, batch, params, output);
        if (overlap(query, output) || overlap(key, output) || overlap(value, output)) {
            throw new IllegalArgumentException(kernel + ": out " + output + " overlaps q, keys or values");
        }
        encoderAttention.runCross(query, key, value, batch, ranges, params, output);
    }

    @Override
    public void latentAttention(Tensor qLatent, Tensor qRope, Tensor latent, Tensor keyRope, KvCache cache, int layer,
                                ForwardBatch batch, AttentionParams params, Tensor out) {
        String kernel = "latentAttention";
        CpuTensor ql = cpu(qLatent, kernel, "qLatent");
        CpuTensor qr = cpu(qRope, kernel, "qRope");
        CpuTensor c = cpu(latent, kernel, "latent");
        CpuTensor kr = cpu(keyRope, kernel, "keyRope");
        CpuTensor output = cpu(out, kernel, "out");
        if (!(cache instanceof CpuKvCache pages)) {
            throw new IllegalArgumentException(kernel + ": the KV cache " + cache + " was not made by the CPU backend");
        }
        for (CpuTensor t : new CpuTensor[]{ql, qr, c, kr, output}) {
            requireActivation(kernel, "input", t);
        }
        KernelShapes.checkLatentAttention(ql, qr, c, kr, pages.spec(), layer, batch, params, output);
        if (overlap(ql, output) || overlap(qr, output)) {
            throw new IllegalArgumentException(kernel + ": out " + output + " overlaps a query");
        }
        attention.runLatent(ql, qr, c, kr, pages, layer, batch, params, output);
    }

    @Override
    public void scatterAddRows(Tensor source, Tensor rows, Tensor weights, Tensor out) {
        String kernel = "scatterAddRows";
        CpuTensor src = cpu(source, kernel, "source");
        CpuTensor indices = cpu(rows, kernel, "rows");
        CpuTensor scale = cpu(weights, kernel, "weights");
        CpuTensor output = cpu(out, kernel, "out");
        requireActivation(kernel, "source", src);
        requireActivation(kernel, "out", output);
        KernelShapes.checkScatterAddRows(src, indices, scale, output);
        int count = src.rows();
        int cols = src.cols();
        if (overlap(src, output)) {
            throw new IllegalArgumentException(kernel + ": out " + output + " overlaps source");
        }
        float[] in = src.floats();
        float[] acc = output.floats();
        // Rows are added one after another: several source rows may name the same out row.
        for (int i = 0; i < count; i++) {
            int row = indices.index(i);
            if (row < 0 || row >= output.rows()) {
                throw new IndexOutOfBoundsException(kernel + ": row index " + row + " at " + i + " is outside the "
                        + output.rows() + " rows of " + output);
            }
            float w = scale.get(i);
            int from = src.arrayIndex(i);
            int to = output.arrayIndex(row);
            for (int c = 0; c < cols; c++) {
                acc[to + c] += w * in[from + c];
            }
        }
    }

    @Override
    public void headwiseLinear(Tensor x, Tensor weight, int heads, Tensor out) {
        String kernel = "headwiseLinear";
        CpuTensor input = cpu(x, kernel, "x");
        CpuTensor w = cpu(weight, kernel, "weight");
        CpuTensor output = cpu(out, kernel, "out");
        requireActivation(kernel, "x", input);
        requireActivation(kernel, "out", output);
        int outPerHead = KernelShapes.checkHeadwiseLinear(input, w, heads, output);
        int in = input.cols() / heads;
        if (overlap(input, output)) {
            throw new IllegalArgumentException(kernel + ": out " + output + " overlaps its input x");
        }
        WeightLoops rowsOf = loops.weights(w.dtype());
        MemorySegment data = w.segment();
        pool.forEach(input.rows() * heads, 1, (first, end, worker) -> {
            for (int unit = first; unit < end; unit++) {
                int t = unit / heads, h = unit % heads;
                int xIndex = input.arrayIndex(t) + h * in;
                int outIndex = output.arrayIndex(t) + h * outPerHead;
                for (int o = 0; o < outPerHead; o++) {
                    output.floats()[outIndex + o] = rowsOf.dot(data, w.rowStart(h * outPerHead + o), input.floats(), xIndex, in);
                }
            }
        });
    }

    @Override
    public void routeSoftmaxTopK(Tensor logits, int topK, boolean normalize, Tensor experts, Tensor weights) {
        String kernel = "routeSoftmaxTopK";
        CpuTensor scores = cpu(logits, kernel, "logits");
        CpuTensor ids = cpu(experts, kernel, "experts");
        CpuTensor chosen = cpu(weights, kernel, "weights");
        requireActivation(kernel, "logits", scores);
        requireActivation(kernel, "weights", chosen);
        KernelShapes.checkRouting(scores, topK, ids, chosen);
        expertKernels.routeSoftmaxTopK(scores, topK, normalize, ids, chosen);
    }

    @Override
    public ExpertWeights expertWeights(List<Tensor> gates, List<Tensor> ups, List<Tensor> downs) {
        KernelShapes.checkExpertWeights(gates, ups, downs);
        return new ExpertKernels.Experts(gates.stream().map(t -> cpu(t, "expertWeights", "gate")).toList(),
                ups.stream().map(t -> cpu(t, "expertWeights", "up")).toList(),
                downs.stream().map(t -> cpu(t, "expertWeights", "down")).toList(),
                gates.getFirst().cols(), gates.getFirst().rows());
    }

    @Override
    public void expertFeedForward(Tensor x, ExpertWeights experts, Tensor expertIds, Tensor weights, Tensor out) {
        String kernel = "expertFeedForward";
        CpuTensor input = cpu(x, kernel, "x");
        CpuTensor ids = cpu(expertIds, kernel, "expert ids");
        CpuTensor chosen = cpu(weights, kernel, "weights");
        CpuTensor output = cpu(out, kernel, "out");
        if (!(experts instanceof ExpertKernels.Experts set)) {
            throw new IllegalArgumentException(kernel + ": the experts " + experts + " were not made by the CPU backend");
        }
        requireActivation(kernel, "x", input);
        requireActivation(kernel, "out", output);
        KernelShapes.checkExpertFeedForward(input, set, ids, chosen, output);
        if (overlap(input, output)) {
            throw new IllegalArgumentException(kernel + ": out " + output + " overlaps its input x");
        }
        expertKernels.feedForward(input, set, ids, chosen, output);
    }

    @Override
    public void addSigmoidGatedRows(Tensor source, Tensor gate, Tensor out) {
        String kernel = "addSigmoidGatedRows";
        CpuTensor src = cpu(source, kernel, "source");
        CpuTensor g = cpu(gate, kernel, "gate");
        CpuTensor output = cpu(out, kernel, "out");
        requireActivation(kernel, "source", src);
        requireActivation(kernel, "gate", g);
        requireActivation(kernel, "out", output);
        KernelShapes.checkSigmoidGatedRows(src, g, output);
        if (overlap(src, output)) {
            throw new IllegalArgumentException(kernel + ": out " + output + " overlaps source");
        }
        expertKernels.addSigmoidGatedRows(src, g, output);
    }

    @Override
    public void close() {
        pool.close();
    }

    // ---- checks -----------------------------------------------------------------------------

    private static CpuTensor cpu(Tensor tensor, String kernel, String role) {
        if (tensor instanceof CpuTensor t) {
            return t;
        }
        throw new IllegalArgumentException(kernel + ": " + role + " (" + tensor + ") was not made by the CPU backend");
    }

    /** Activations are float32 held in arrays (made by allocate or constant). */
    private static void requireActivation(String kernel, String role, CpuTensor t) {
        if (!t.inArray()) {
            throw new IllegalArgumentException(kernel + ": " + role + " " + t
                    + " must be an activation tensor (allocate or constant), not a weight");
        }
    }

    private static boolean overlap(CpuTensor a, CpuTensor b) {
        return a.floats() == b.floats()
                && a.offset() < b.offset() + b.elementCount() && b.offset() < a.offset() + a.elementCount();
    }

    /** Copies n elements of any floating tensor from element {@code index} into dst, as float32. */
    private void widen(CpuTensor source, long index, float[] dst, int dstIndex, int n) {
        if (source.inArray()) {
            System.arraycopy(source.floats(), source.offset() + (int) index, dst, dstIndex, n);
        } else {
            loops.weights(source.dtype()).widen(source.segment(), index, dst, dstIndex, n);
        }
    }

    private static void checkRowwise(String kernel, CpuTensor x, CpuTensor weight, CpuTensor bias, CpuTensor out) {
        requireActivation(kernel, "x", x);
        requireActivation(kernel, "out", out);
        KernelShapes.checkRowwise(kernel, x, weight, bias, out);
    }

    private static void checkElementwise(String kernel, CpuTensor a, CpuTensor b, CpuTensor out) {
        requireActivation(kernel, "first input", a);
        requireActivation(kernel, "second input", b);
        requireActivation(kernel, "out", out);
        KernelShapes.checkElementwise(kernel, a, b, out);
    }
}
