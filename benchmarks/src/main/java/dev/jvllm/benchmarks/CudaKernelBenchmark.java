package dev.jvllm.benchmarks;

import dev.jvllm.cuda.CudaBackend;
import dev.jvllm.engine.ForwardBatch;
import dev.jvllm.spi.AttentionParams;
import dev.jvllm.spi.KvCache;
import dev.jvllm.spi.KvCacheSpec;
import dev.jvllm.spi.Tensor;
import dev.jvllm.weights.DType;
import dev.jvllm.weights.WeightTensor;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.util.Random;

import static dev.jvllm.benchmarks.JsonLines.emit;

/**
 * The kernels of one Llama-3-8B decoder layer on the CUDA backend in bfloat16, each timed alone
 * with CUDA events after warm-up, against its floor (bytes it must move over the copy bandwidth
 * measured here, or FLOPs over the bf16 tensor-core peak): where the GPU time of a decode step
 * goes, and how far each kernel is from what the card allows. One JSON line per kernel.
 *
 * <pre>java ... dev.jvllm.benchmarks.CudaKernelBenchmark</pre>
 *
 * <p>{@code --attention-heads} times one layer's attention for several families' head shapes and a vision
 * tower's encoder attention ({@code tools/gpu/attention-heads.sh} runs it per variant); {@code --elementwise}
 * times a vision tower's elementwise kernels at 7 501 rows.
 */
public final class CudaKernelBenchmark {

    private static final int HIDDEN = 4096, INTERMEDIATE = 14336, HEADS = 32, KV_HEADS = 8, HEAD_DIM = 128;
    private static final int VOCAB = 128256;
    private static final int REPEATS = 100;
    private static final int WARMUP = 300;

    private CudaKernelBenchmark() {
    }

    public static void main(String[] args) {
        if (args.length == 1 && args[0].equals("--attention-heads")) {
            attentionHeads();
            return;
        }
        if (args.length == 1 && args[0].equals("--elementwise")) {
            elementwise();
            return;
        }
        if (args.length > 0) {
            throw new IllegalArgumentException("unknown arguments " + java.util.List.of(args) + " (none, --attention-heads or --elementwise)");
        }
        try (CudaBackend gpu = CudaBackend.open(0, DType.BF16); Arena arena = Arena.ofShared()) {
            emit("device", "name", gpu.deviceDescription());
            double bandwidth = copyBandwidth(gpu);
            emit("copy_bandwidth", "gb_s", round(bandwidth / 1e9));
            Random random = new Random(0);
            Tensor qkv = weight(gpu, arena, random, (HEADS + 2 * KV_HEADS) * HEAD_DIM, HIDDEN);
            Tensor o = weight(gpu, arena, random, HIDDEN, HEADS * HEAD_DIM);
            Tensor gateUp = weight(gpu, arena, random, 2 * INTERMEDIATE, HIDDEN);
            Tensor down = weight(gpu, arena, random, HIDDEN, INTERMEDIATE);
            Tensor head = weight(gpu, arena, random, VOCAB, HIDDEN);
            for (int tokens : new int[]{1, 2, 4, 8, 64, 256, 4096}) {
                linear(gpu, "qkv", qkv, tokens, bandwidth);
                linear(gpu, "o", o, tokens, bandwidth);
                linear(gpu, "gate_up", gateUp, tokens, bandwidth);
                linear(gpu, "down", down, tokens, bandwidth);
                if (tokens <= 256) linear(gpu, "lm_head", head, tokens, bandwidth);
            }
            Tensor norm = gpu.constant(new float[HIDDEN], 1, HIDDEN);
            for (int tokens : new int[]{1, 256}) {
                Tensor x = gpu.allocate(tokens, HIDDEN);
                Tensor y = gpu.allocate(tokens, HIDDEN);
                long bytes = 2L * tokens * HIDDEN * 2;
                timed(gpu, "rms_norm", tokens, bytes, bandwidth, () -> gpu.rmsNorm(x, norm, 1e-5f, 0f, y));
                timed(gpu, "add", tokens, 3 * bytes / 2, bandwidth, () -> gpu.add(x, y, y));
                Tensor gate = gpu.allocate(tokens, INTERMEDIATE);
                Tensor up = gpu.allocate(tokens, INTERMEDIATE);
                timed(gpu, "silu_mul", tokens, 3L * tokens * INTERMEDIATE * 2, bandwidth, () -> gpu.siluMul(gate, up, gate));
            }
            for (int sequences : new int[]{1, 64, 256}) {
                attention(gpu, sequences, 512, bandwidth);
            }
            prefillAttention(gpu, 8, 512);
        }
    }

    private static void linear(CudaBackend gpu, String name, Tensor w, int tokens, double bandwidth) {
        Tensor x = gpu.allocate(tokens, w.cols());
        Tensor y = gpu.allocate(tokens, w.rows());
        long bytes = 2L * w.rows() * w.cols() + 2L * tokens * (w.rows() + w.cols());
        double flops = 2.0 * tokens * w.rows() * w.cols();
        double millis = time(gpu, () -> gpu.linear(x, w, null, y));
        double floorMillis = Math.max(bytes / bandwidth, flops / 790e12) * 1e3;
        emit("linear", "name", name, "tokens", tokens, "out", w.rows(), "in", w.cols(), "us", round(millis * 1e3),
                "gb_s", round(bytes / (millis / 1e3) / 1e9), "tflops", round(flops / (millis / 1e3) / 1e12),
                "floor_us", round(floorMillis * 1e3), "share_of_floor", round(floorMillis / millis),
                "host_us", round(lastHostMicros));
    }

    private static void timed(CudaBackend gpu, String name, int tokens, long bytes, double bandwidth, Runnable work) {
        reportBandwidth(name, tokens, bytes, bandwidth, time(gpu, work));
    }

    private static void reportBandwidth(String name, int tokens, long bytes, double bandwidth, double millis) {
        double floorMillis = bytes / bandwidth * 1e3;
        emit(name, "tokens", tokens, "us", round(millis * 1e3), "gb_s", round(bytes / (millis / 1e3) / 1e9),
                "floor_us", round(floorMillis * 1e3), "share_of_floor", round(floorMillis / millis),
                "host_us", round(lastHostMicros));
    }

    /** Decode attention of {@code sequences} tokens, each over {@code context} cached positions. */
    private static void attention(CudaBackend gpu, int sequences, int context, double bandwidth) {
        double millis = attentionMillis(gpu, sequences, context, 1);
        long bytes = 2L * sequences * (context + 1) * KV_HEADS * HEAD_DIM * 2;
        reportBandwidth("decode_attention", sequences, bytes, bandwidth, millis);
    }

    /** Causal attention of {@code sequences} prompts of {@code length} tokens (the flash_prefill kernel). */
    private static void prefillAttention(CudaBackend gpu, int sequences, int length) {
        double millis = attentionMillis(gpu, sequences, 0, length);
        double flops = 4.0 * sequences * HEADS * HEAD_DIM * (length * (length + 1) / 2.0);
        emit("prefill_attention", "sequences", sequences, "length", length, "us", round(millis * 1e3),
                "tflops", round(flops / (millis / 1e3) / 1e12), "host_us", round(lastHostMicros));
    }

    /**
     * Device milliseconds of one layer's attention for {@code sequences} sequences, each of
     * {@code queryLength} new tokens after {@code cached} cached ones, in a run of blocks of its own.
     */
    private static double attentionMillis(CudaBackend gpu, int sequences, int cached, int queryLength) {
        return attentionMillis(gpu, sequences, cached, queryLength, HEADS, KV_HEADS, HEAD_DIM);
    }

    /** As above for heads of another shape. */
    private static double attentionMillis(CudaBackend gpu, int sequences, int cached, int queryLength, int heads, int kvHeads,
                                          int headDim) {
        int blockSize = 16;
        int blocksPerSequence = (cached + queryLength + blockSize - 1) / blockSize;
        int tokens = sequences * queryLength;
        int[][] tables = new int[sequences][blocksPerSequence];
        int[] positions = new int[tokens], slots = new int[tokens], starts = new int[sequences + 1];
        int[] contexts = new int[sequences], logitRows = new int[sequences];
        for (int s = 0; s < sequences; s++) {
            for (int b = 0; b < blocksPerSequence; b++) tables[s][b] = s * blocksPerSequence + b;
            for (int i = 0; i < queryLength; i++) {
                int t = s * queryLength + i, position = cached + i;
                positions[t] = position;
                slots[t] = tables[s][position / blockSize] * blockSize + position % blockSize;
            }
            starts[s + 1] = (s + 1) * queryLength;
            contexts[s] = cached + queryLength;
            logitRows[s] = starts[s + 1] - 1;
        }
        ForwardBatch batch = new ForwardBatch(new int[tokens], positions, slots, starts, contexts, tables, blockSize,
                logitRows);
        AttentionParams params = new AttentionParams(heads, kvHeads, headDim, (float) (1 / Math.sqrt(headDim)),
                0, 0f, null);
        KvCacheSpec spec = new KvCacheSpec(1, sequences * blocksPerSequence, blockSize, kvHeads, headDim);
        try (KvCache cache = gpu.allocateKvCache(spec)) {
            Tensor q = gpu.allocate(tokens, heads * headDim);
            Tensor k = gpu.allocate(tokens, kvHeads * headDim);
            Tensor v = gpu.allocate(tokens, kvHeads * headDim);
            Tensor out = gpu.allocate(tokens, heads * headDim);
            return time(gpu, () -> gpu.attention(q, k, v, cache, 0, batch, params, out));
        }
    }

    /**
     * {@code --attention-heads}: one layer's attention for heads of Llama-3-8B (32 of 128 over 8 KV heads),
     * Phi-3-mini (32 of 96, no grouping), Gemma-2-9B (16 of 256 over 8), Phi-2 (32 of 80, no grouping)
     * and Gemma-2B (8 of 256 over 1): decode at batch 1 and 64 over 2 048 cached positions, and prefill
     * of 4 × 512; then a vision tower's encoder attention: 13 images of 577 tokens in 16 heads of 64
     * (CLIP ViT-L/14 at 336 pixels, a Phi-3-Vision image) and 4 of 1 024 in 16 heads of 80 (Qwen2-VL's
     * tower). Every measure runs once untimed first, so that the first timed one finds the device's
     * clocks up as the others do. Run it with and without
     * {@code -Djvllm.cuda.genericAttention=true} to compare the fast kernels with the generic one.
     */
    private static void attentionHeads() {
        try (CudaBackend gpu = CudaBackend.open(0, DType.BF16)) {
            emit("device", "name", gpu.deviceDescription(), "generic_attention", Boolean.getBoolean("jvllm.cuda.genericAttention"));
            int[][] shapes = {{32, 8, 128}, {32, 32, 96}, {16, 8, 256}, {32, 32, 80}, {8, 1, 256}};
            int[][] towers = {{13, 577, 16, 64}, {4, 1024, 16, 80}};
            // Every measure once untimed, then all again timed and reported.
            for (boolean timed : new boolean[]{false, true}) {
                for (int[] shape : shapes) {
                    for (int sequences : new int[]{1, 64}) {
                        double millis = attentionMillis(gpu, sequences, 2048, 1, shape[0], shape[1], shape[2]);
                        if (timed) {
                            emit("decode_attention", "heads", shape[0], "kv_heads", shape[1], "head_dim", shape[2],
                                    "sequences", sequences, "context", 2049, "us", round(millis * 1e3));
                        }
                    }
                    double millis = attentionMillis(gpu, 4, 0, 512, shape[0], shape[1], shape[2]);
                    double flops = 4.0 * 4 * shape[0] * shape[2] * (512 * 513 / 2.0);
                    if (timed) {
                        emit("prefill_attention", "heads", shape[0], "kv_heads", shape[1], "head_dim", shape[2], "sequences", 4,
                                "length", 512, "us", round(millis * 1e3), "tflops", round(flops / (millis / 1e3) / 1e12));
                    }
                }
                for (int[] tower : towers) {
                    double millis = encoderAttentionMillis(gpu, tower[0], tower[1], tower[2], tower[3]);
                    double flops = 4.0 * tower[0] * tower[2] * tower[3] * (double) tower[1] * tower[1];
                    if (timed) {
                        emit("encoder_attention", "heads", tower[2], "kv_heads", tower[2], "head_dim", tower[3],
                                "sequences", tower[0], "length", tower[1], "us", round(millis * 1e3),
                                "tflops", round(flops / (millis / 1e3) / 1e12));
                    }
                }
            }
        }
    }

    /**
     * {@code --elementwise}: a vision tower's elementwise work at 7 501 rows (13 CLIP crops) of 1 024 and
     * 4 096: the activations (quick GELU, exact GELU, SiLU), an add, a layer norm, and a product with and
     * without its bias (the difference is the bias addition), each with its bytes as bandwidth.
     */
    private static void elementwise() {
        try (CudaBackend gpu = CudaBackend.open(0, DType.BF16); Arena arena = Arena.ofShared()) {
            emit("device", "name", gpu.deviceDescription());
            Random random = new Random(7);
            int rows = 7501;
            for (int cols : new int[]{1024, 4096}) {
                Tensor x = gpu.allocate(rows, cols);
                Tensor y = gpu.allocate(rows, cols);
                gpu.scale(x, 0f, x);
                double bytes = 2.0 * rows * cols * 2;
                for (dev.jvllm.spi.Activation fn : new dev.jvllm.spi.Activation[]{
                        dev.jvllm.spi.Activation.QUICK_GELU, dev.jvllm.spi.Activation.GELU, dev.jvllm.spi.Activation.SILU}) {
                    double millis = timeAgain(gpu, () -> gpu.activation(fn, x, y));
                    emit("activation", "fn", fn.name(), "rows", rows, "cols", cols, "us", round(millis * 1e3),
                            "tb_s", round(bytes / (millis / 1e3) / 1e12));
                }
                double add = timeAgain(gpu, () -> gpu.add(x, y, y));
                emit("add", "rows", rows, "cols", cols, "us", round(add * 1e3), "tb_s", round(1.5 * bytes / (add / 1e3) / 1e12));
                Tensor scale = weight(gpu, arena, random, 1, cols);
                double norm = timeAgain(gpu, () -> gpu.layerNorm(x, scale, scale, 1e-5f, y));
                emit("layer_norm", "rows", rows, "cols", cols, "us", round(norm * 1e3), "tb_s", round(bytes / (norm / 1e3) / 1e12));
                Tensor in = gpu.allocate(rows, 1024);
                Tensor w = weight(gpu, arena, random, cols, 1024);
                Tensor bias = weight(gpu, arena, random, 1, cols);
                time(gpu, () -> gpu.linear(in, w, bias, y));
                double plain = time(gpu, () -> gpu.linear(in, w, null, y));
                double biased = time(gpu, () -> gpu.linear(in, w, bias, y));
                emit("bias", "rows", rows, "cols", cols, "product_us", round(plain * 1e3), "with_bias_us", round(biased * 1e3),
                        "bias_us", round((biased - plain) * 1e3), "tb_s", round(bytes / ((biased - plain) / 1e3) / 1e12));
            }
        }
    }

    /** Device milliseconds of one encoder attention over {@code sequences} sequences of {@code length} tokens. */
    private static double encoderAttentionMillis(CudaBackend gpu, int sequences, int length, int heads, int headDim) {
        int tokens = sequences * length;
        int[] starts = new int[sequences + 1], positions = new int[tokens], contexts = new int[sequences];
        int[] logitRows = new int[sequences];
        int[][] tables = new int[sequences][0];
        for (int s = 0; s < sequences; s++) {
            starts[s + 1] = (s + 1) * length;
            contexts[s] = length;
            logitRows[s] = starts[s + 1] - 1;
            for (int i = 0; i < length; i++) positions[s * length + i] = i;
        }
        ForwardBatch batch = new ForwardBatch(new int[tokens], positions, new int[tokens], starts, contexts, tables, 16,
                logitRows);
        AttentionParams params = AttentionParams.causal(heads, heads, headDim);
        Tensor q = gpu.allocate(tokens, heads * headDim);
        Tensor k = gpu.allocate(tokens, heads * headDim);
        Tensor v = gpu.allocate(tokens, heads * headDim);
        Tensor out = gpu.allocate(tokens, heads * headDim);
        return time(gpu, () -> gpu.encoderAttention(q, k, v, batch, params, out));
    }

    /**
     * Mean device milliseconds of {@code work} over REPEATS runs, after WARMUP runs that let the JIT
     * compile the launch path (interpreted, a launch costs the host tens of microseconds, and a
     * small kernel would time the host rather than the GPU).
     */
    private static double time(CudaBackend gpu, Runnable work) {
        for (int i = 0; i < WARMUP; i++) work.run();
        gpu.synchronize();
        long[] hostNanos = new long[1];
        float millis = gpu.timeMillis(() -> {
            long start = System.nanoTime();
            for (int i = 0; i < REPEATS; i++) work.run();
            hostNanos[0] = System.nanoTime() - start;
        });
        gpu.synchronize();
        lastHostMicros = hostNanos[0] / 1e3 / REPEATS;
        return millis / REPEATS;
    }

    /** {@link #time} run twice, the second reported: the first brings the device's clocks up, as a process's first measure found them down. */
    private static double timeAgain(CudaBackend gpu, Runnable work) {
        time(gpu, work);
        return time(gpu, work);
    }

    /**
     * Host time per call of the last {@link #time}: the Java side plus the driver's launch. Where it
     * is above the device time, the device waited for the host and the device time is the host's.
     */
    private static double lastHostMicros;

    /** Device-to-device copy of 1 GiB: bytes read plus bytes written per second, as the anchors count reads. */
    private static double copyBandwidth(CudaBackend gpu) {
        int rows = 1 << 15, cols = 1 << 14;  // 2^29 bf16 elements = 1 GiB
        Tensor a = gpu.allocate(rows, cols);
        Tensor b = gpu.allocate(rows, cols);
        double millis = time(gpu, () -> gpu.scale(a, 1f, b));
        return 2.0 * rows * cols * 2 / (millis / 1e3);
    }

    private static Tensor weight(CudaBackend gpu, Arena arena, Random random, int rows, int cols) {
        MemorySegment data = arena.allocate((long) rows * cols * 2, 16);
        for (long i = 0; i < (long) rows * cols; i += 4096) {
            data.setAtIndex(ValueLayout.JAVA_SHORT, i, (short) (random.nextInt() & 0x3fff));
        }
        return gpu.weight(new WeightTensor("w", DType.BF16, new long[]{rows, cols}, data, Path.of("random")));
    }

    private static double round(double v) {
        return Math.round(v * 1000) / 1000.0;
    }

}
