package dev.jvllm.cuda;

import dev.jvllm.JvllmException;
import dev.jvllm.engine.ForwardBatch;
import dev.jvllm.spi.Activation;
import dev.jvllm.spi.AttentionParams;
import dev.jvllm.spi.Backend;
import dev.jvllm.spi.ExpertWeights;
import dev.jvllm.spi.KvCache;
import dev.jvllm.spi.KernelShapes;
import dev.jvllm.spi.KvCacheSpec;
import dev.jvllm.spi.Tensor;
import dev.jvllm.weights.DType;
import dev.jvllm.weights.Int4Weight;
import dev.jvllm.weights.WeightTensor;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Arrays;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import java.util.WeakHashMap;
import java.util.function.Supplier;

import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_INT;

/**
 * The CUDA backend: tensors in device memory, kernels from the {@code .cu} sources compiled by
 * NVRTC for the device, linear layers through cuBLAS, all queued in order on one stream; the host
 * waits only when it reads a result ({@link #toFloatArray}).
 *
 * <p>It computes in one activation type chosen when it is opened: F32 (matches the CPU backend
 * and Hugging Face's float32 outputs to rounding), or BF16/F16 (half the memory traffic, tensor
 * cores). Activations and the KV cache are of that type; checkpoint weights are converted to it
 * as they are uploaded, as vLLM casts a model to its {@code dtype}, so every cuBLAS product takes
 * two operands of one type and sums in float32. Kernels keep float32 registers and sums.
 *
 * <p>Every {@link Backend} kernel runs here, including multi-head latent attention over a latent
 * cache (DeepSeek-V2/V3) and cache-free encoder attention (BERT, XLM-RoBERTa); those two take one
 * block per (token, head) ({@code attention.cu}), correct for any batch but not tuned for speed.
 * Mixture-of-experts layers route and run their experts without the host ({@link CudaExperts}).
 *
 * <p>One thread drives a backend at a time, as with the CPU backend.
 */
public final class CudaBackend implements Backend {
    private static final org.slf4j.Logger log = org.slf4j.LoggerFactory.getLogger(CudaBackend.class);

    private static final int ELEMENTWISE_THREADS = 256;
    private static final int MAX_BLOCKS = 1 << 20;
    private static final int ATTENTION_THREADS = 128;
    /** encoder_attention_tiled's tokens a block (attention.cu's ENCODER_QUERIES), one thread each. */
    private static final int ENCODER_QUERIES = 64;
    /**
     * Encoder attention by query tiles for head sizes 32, 64 and 80 ({@code -Djvllm.cuda.encoderTiles=false}:
     * one block a token and head, encoder_attention, for comparisons).
     */
    private static final boolean ENCODER_TILES = !"false".equals(System.getProperty("jvllm.cuda.encoderTiles"));
    /**
     * 16-bit encoder attention on tensor cores (encoder_flash, the bidirectional form of flash_prefill) for
     * head sizes 32, 64, 80 and 128 ({@code -Djvllm.cuda.encoderFlash=false}: the query tiles above, for comparisons).
     */
    private static final boolean ENCODER_FLASH = !"false".equals(System.getProperty("jvllm.cuda.encoderFlash"));
    private static final long STAGING_BYTES = 8L << 20;
    private static final long CUBLAS_WORKSPACE_BYTES = 32L << 20;
    private static final int FLASH_THREADS = 128;
    /**
     * One-row products with rows of at most this many weights take the gemv kernels (linear.cu),
     * the rest cuBLAS. Measured on an H100 with Llama-3-8B's layers (CudaKernelBenchmark): at one
     * row cuBLAS reads the 4096-wide weights at 1.0-1.6 TB/s and the 14336-wide down projection
     * at 2.5 TB/s; from two rows on, cuBLAS is the faster.
     */
    private static final int GEMV_LONGEST_ROW = 16384;
    /**
     * The fewest weights of a row a gemv warp takes ({@link #gemvSplit}), where
     * {@code -Djvllm.cuda.gemvShortestPart} does not set it: the best measured for the device's
     * memory. On an H100 (3.35 TB/s) 1024, Llama-3-8B's 4096-wide rows in four parts of 2 KB:
     * batch 1 175.4 / 175.5 tok/s against 172.8 / 172.8 at 2048 and 165.1 / 165.3 at 4096 (one
     * call). On an H200 (4.8 TB/s) 2048, halves: 226.4 against 219.1 at 1024 and 219.2 at 512.
     */
    private static final Integer GEMV_SHORTEST_PART_SET = Integer.getInteger("jvllm.cuda.gemvShortestPart");
    /** Peak memory bandwidth from which gemv rows split into halves rather than quarters (bytes/s). */
    private static final double GEMV_HALVES_FROM_BANDWIDTH = 4.0e12;
    /**
     * Kernels start while the kernel before them finishes (programmatic dependent launch, compute
     * capability 9.0 and later; {@code -Djvllm.cuda.programmaticLaunches=false} turns it off). What
     * a kernel reads before it waits is what the pass cannot change: the gemv kernels' first weight
     * pieces and decode attention's first tile of keys cached in earlier steps, so those loads
     * overlap the end of the kernel ahead. On an H100, batch-1 decode: 162.9 / 166.3 tok/s against
     * 159.5 / 158.6 without, batches 64 and 256, prefill and offline the same. (Before those early
     * loads it measured 2.5-5% slower, then the same: graphs already hide the launch latency.)
     */
    private static final boolean PROGRAMMATIC_LAUNCHES =
            Boolean.parseBoolean(System.getProperty("jvllm.cuda.programmaticLaunches", "true"));
    /**
     * Whether a graph replay is launched once the pass has written its uploads, before the rest of
     * its calls are checked against the recording, so that the check overlaps the device's work
     * instead of preceding it (the decoders upload every input before their first layer). On an
     * H100 at batch 1 it took 150 µs a step off the wait for results; {@code
     * -Djvllm.cuda.earlyGraphLaunch=false} turns it off for A/B runs.
     */
    private static final boolean EARLY_GRAPH_LAUNCH =
            Boolean.parseBoolean(System.getProperty("jvllm.cuda.earlyGraphLaunch", "true"));
    /**
     * Bytes of each warp's part of a weight row that the gemv kernels ask L2 for before waiting on
     * the kernel ahead of them (linear.cu's prefetch_row_part), beside the first pieces they load
     * then; only under programmatic launches. None by default: at 4 KB a warp, batch 1 measured
     * 162.3 / 160.9 tok/s against 164.4 / 162.5 without (one H100, one call).
     */
    private static final int GEMV_PREFETCH_BYTES = Integer.getInteger("jvllm.cuda.gemvPrefetchBytes", 0);
    private static final int GEMV_WARPS = 4;
    /**
     * Whether weights read by one input (q/k/v, gate/up) are uploaded stacked ({@link #stackedWeight}),
     * and up to how many tokens their products then run as one cuBLAS call into a kept buffer
     * (split back, or gated, by one more kernel); above it the parts' own calls are as fast and
     * the buffer would hold hundreds of MB.
     */
    private static final boolean STACKED_WEIGHTS =
            Boolean.parseBoolean(System.getProperty("jvllm.cuda.stackedWeights", "true"));
    private static final int STACKED_PRODUCTS_MAX_TOKENS = Integer.getInteger("jvllm.cuda.stackedProductsMaxTokens", 1024);
    /**
     * GPTQ's and AWQ's 4-bit weights stay 4-bit in device memory (quantized.cu); false decodes them at
     * load to the activation type, as before they were read.
     */
    private static final boolean INT4_WEIGHTS = !"false".equals(System.getProperty("jvllm.cuda.int4Weights"));
    /**
     * The most rows of x that the gemm_int4 kernels take (each launch of gemm_int4_wide reading the
     * weight again); more dequantize the weight into a kept buffer for cuBLAS.
     */
    private static final int INT4_MMA_MAX_TOKENS = Integer.getInteger("jvllm.cuda.int4MmaTokens", 128);
    /**
     * From this many rows of x (at most 16) the gemm_int4_wide kernels take a 4-bit product (up to
     * 64 rows a launch, x shared by a block's 256 rows); fewer go to gemm_int4_N in one launch. On an
     * H200, 16 rows by gemm_int4_16 ran batch 16 at 3 163 tok/s, by gemm_int4_wide at 4 089.
     */
    private static final int INT4_WIDE_TOKENS = Math.min(16, Integer.getInteger("jvllm.cuda.int4WideTokens", 16));
    private static final int INT4_WIDE_TOKENS_A_LAUNCH = 64;
    /**
     * Blocks a gemm_int4_wide launch aims at, in multiprocessors (k is sliced until the row blocks
     * reach at most this many): two for launches of up to 16 rows of x (whose kernels fit two blocks
     * an SM), one beyond. On an H200, aiming at two (then rounded to the nearest slice count, not
     * down) took steady batch 16 from 4 107 to 4 581 tok/s and batch 64 from 8 071 down to 7 197.
     */
    private static float int4WideWaves(int tokens) {
        return tokens <= 16 ? 2 : 1;
    }
    /** Row tiles a gemm_int4_wide block takes: 8 warps of two (gated: of one gate tile and its up tile). */
    private static final int INT4_WIDE_BLOCK_TILES = 16, INT4_WIDE_GATED_BLOCK_TILES = 8;
    private static final List<Kernel> INT4_KERNELS = List.of(Kernel.GEMM_INT4_2, Kernel.GEMM_INT4_8, Kernel.GEMM_INT4_16,
            Kernel.GEMM_INT4_GATED_2, Kernel.GEMM_INT4_GATED_8, Kernel.GEMM_INT4_GATED_16,
            Kernel.GEMM_INT4_WIDE_16, Kernel.GEMM_INT4_WIDE_32, Kernel.GEMM_INT4_WIDE_64, Kernel.GEMM_INT4_WIDE_GATED_16,
            Kernel.GEMM_INT4_WIDE_GATED_32, Kernel.GEMM_INT4_WIDE_GATED_64);
    /**
     * Which products cuBLAS runs (all but the gemv kernels' one-row ones) go through cuBLASLt with an
     * algorithm timed per shape ({@link TunedProducts}) instead of cublasGemmEx's default, from
     * {@code -Djvllm.cuda.cublasLt}: {@code captured} (the default) those of captured passes, the
     * decode steps' graphs of up to {@code cublasLtMaxTokens} rows, each searched when its graph is
     * first captured (the capture is given up, the pass runs eagerly and searches); {@code all}
     * (or {@code true}) also every eager product of up to that many rows, such as a step's mix of
     * prefill chunks, each new row count a search of 20-250 ms on the serving path; {@code off}
     * (or {@code false}) none. The chosen algorithms are kept beside the compiled kernels
     * ({@link TunedProductsFile}), so that a later run starts with them. On an H200, steady batch-64
     * decode ran 1.9-2.5% faster with the searched products; cublasGemmEx reads a 64-row product's
     * weights at 2.9-3.8 of its 4.2 TB/s. Up to 256 rows since the search also times other cluster
     * shapes: batch-256 decode of a Llama-3-8B shape 0.6-0.8% faster than with cublasGemmEx there
     * (20 119 / 20 177 against 19 998 / 20 010 tok/s, alternating in one call).
     */
    private static final ProductTuning CUBLAS_LT = ProductTuning.parse(System.getProperty("jvllm.cuda.cublasLt", "captured"));
    private static final int CUBLAS_LT_CANDIDATES = Integer.getInteger("jvllm.cuda.cublasLtCandidates", 16);
    private static final int CUBLAS_LT_MAX_TOKENS = Integer.getInteger("jvllm.cuda.cublasLtMaxTokens", 256);
    /**
     * Whether cuBLASLt's tuned products add a linear layer's bias themselves (the bias epilogue; a bias of
     * the activation type) instead of add_bias_rows after them: BART-large's batched decode had five
     * add_bias_rows a layer and step beside the products. -Djvllm.cuda.cublasLtBias=false for A/B runs.
     */
    private static final boolean LT_BIAS_EPILOGUE = !"false".equals(System.getProperty("jvllm.cuda.cublasLtBias"));
    /**
     * Whether a fused decode step's paged_decode reads q, k and v from the columns of their one
     * stacked product ({@link #projectedRotaryAttention}) rather than after split_columns. With
     * {@link #SPLIT_PRODUCT_SLICES} at 4, Llama-3-8B on an H200 in one call: batch-64 window
     * 10 789 tok/s against 10 596 with neither, batch 256 unchanged (20 133 against 20 159).
     */
    private static final boolean STRIDED_DECODE_QKV =
            Boolean.parseBoolean(System.getProperty("jvllm.cuda.stridedDecodeQkv", "true"));
    /**
     * {@link #linearAddRmsNorm}'s split of deep products over slices of K for decode batches: the
     * slices (1: no split; 4 measured fastest for the down projection alone, 30.7 against 35.1 µs
     * at 64 rows on an H200), the most rows, and the least depth split.
     */
    private static final int SPLIT_PRODUCT_SLICES = Integer.getInteger("jvllm.cuda.splitProductSlices", 4);
    private static final int SPLIT_PRODUCT_MAX_TOKENS = Integer.getInteger("jvllm.cuda.splitProductMaxTokens", 128);
    private static final int SPLIT_PRODUCT_MIN_DEPTH = Integer.getInteger("jvllm.cuda.splitProductMinDepth", 8192);
    /** Whether decode steps rotate and cache keys inside paged_decode ({@link #rotaryAttention}); an A/B switch. */
    private static final boolean FUSED_DECODE_ROTARY =
            Boolean.parseBoolean(System.getProperty("jvllm.cuda.fusedDecodeRotary", "true"));
    /** DECODE_WARPS and DECODE_MAX_GROUP of attention.cu. */
    private static final int DECODE_THREADS = 128;
    /**
     * The scalar paged_decode's longest partition, attention.cu's DECODE_PARTITION: it keeps a
     * partition's scores and slots in shared memory.
     */
    private static final int DECODE_SCALAR_PARTITION = 256;
    /**
     * The tiled paged_decode's longest partition (16-bit activations): it keeps nothing per key, and
     * a graph's block tables of up to 64 blocks of 16 then take one partition, with no parts to merge.
     */
    private static final int DECODE_TILED_PARTITION = Integer.getInteger("jvllm.cuda.decodePartition", 1024);
    /** The shortest partitions; a tiled block's four warps take 16 keys each at a time. */
    private static final int DECODE_SCALAR_SHORTEST_PARTITION = 32;
    private static final int DECODE_TILED_SHORTEST_PARTITION = Integer.getInteger("jvllm.cuda.decodeShortestPartition", 64);
    /**
     * The fewest paged_decode blocks an SM is given before partitions are shortened. 2 rather than
     * 4: at batch 64 (contexts near 600, graph tables of 1024 positions) one partition a (token, KV
     * head) with no merge beat two of 512 by 2.7% a step on an H100 (7,605 / 7,732 against 7,369 /
     * 7,542 tok/s, one call). Batch 1 takes {@link #fewPairsPartitionSize} instead.
     */
    private static final int DECODE_BLOCKS_PER_MULTIPROCESSOR = Integer.getInteger("jvllm.cuda.decodeBlocksPerMultiprocessor", 2);
    private static final int DECODE_MAX_GROUP = 8;
    /** The partitions one cluster of paged_decode blocks holds where the kernel allows clusters of 16. */
    private static final int DECODE_CLUSTER_PARTITIONS = 16;
    /**
     * Off ({@code -Djvllm.cuda.decodeFewPairPartitions=false}): few pairs' partitions halve as many
     * pairs' do, and spans of more partitions than a cluster holds still launch in clusters (the
     * rules before {@link #fewPairsPartitionSize}); for A/B runs.
     */
    private static final boolean DECODE_FEW_PAIR_PARTITIONS =
            Boolean.parseBoolean(System.getProperty("jvllm.cuda.decodeFewPairPartitions", "true"));
    /**
     * Whether paged_decode's partitions of a token run in clusters that merge their parts through
     * distributed shared memory (attention.cu's merge_cluster_parts) rather than through global
     * memory and a counter ({@link #decodeCluster}).
     */
    private static final boolean DECODE_CLUSTERS = Boolean.parseBoolean(System.getProperty("jvllm.cuda.decodeClusters", "true"));
    /** {@code -Djvllm.cuda.genericAttention=true}: every attention step on the generic kernel, for comparisons. */
    private static final boolean GENERIC_ATTENTION = Boolean.getBoolean("jvllm.cuda.genericAttention");
    private static final int MAX_HEAD_DIM = 256;
    /** MAX_LATENT_RANK and MAX_LATENT_ROPE_DIM of attention.cu: DeepSeek-V2/V3 use 512 and 64. */
    private static final int MAX_LATENT_RANK = 512;
    private static final int MAX_LATENT_ROPE_DIM = 128;

    private final CudaContext context;
    private final DType activationType;
    /** Activations in the 16-byte piece the elementwise, norm and rotary kernels move at a time. */
    private final int pieceElements;
    private final DeviceMemory memory;
    private final KernelLauncher kernels;
    private final int gemvPrefetchBytes;
    /** Whether each paged_decode kernel may have clusters above 8 blocks, asked once. */
    private final Map<Kernel, Boolean> largeDecodeClusters = new EnumMap<>(Kernel.class);
    private KernelTimes.Timer kernelTimer;
    private final Cublas cublas;
    private final MemorySegment cublasHandle;
    /** Held here: a buffer nothing references is freed (DeviceMemory), and cuBLAS keeps only its address. */
    private final DeviceBuffer cublasWorkspace;
    /** The cuBLASLt products with searched algorithms; null where they are off or cuBLASLt is missing. */
    private final TunedProducts tunedProducts;
    private final Arena hostArena = Arena.ofShared();
    private final MemorySegment one;
    private final MemorySegment zero;
    private final DeviceErrors errors;
    /** Page-locked staging for small uploads (batch metadata, indices), reused after each drain. */
    private final MemorySegment staging;
    private long stagingUsed;
    /** Page-locked staging for larger uploads from the Java heap (a vision tower pass's pixels), two in turn. */
    private final UploadSlot[] uploadSlots = {new UploadSlot(), new UploadSlot()};
    private int nextUploadSlot;
    private final Map<float[], CudaTensor> alibiSlopes = new WeakHashMap<>();
    private final Map<float[], CudaTensor> relativeBiases = new WeakHashMap<>();
    private final Map<CudaTensor, CudaTensor> convertedWeights = new WeakHashMap<>();
    private ForwardBatch uploadedBatch;
    private CudaKvCache uploadedFor;
    private BatchOnDevice uploadedBatchData;
    private ForwardBatch encoderBatch;
    private CudaTensor encoderSequences;
    /** The ranges array crossAttention was last given, and its copy on the device (the layers of a pass share one). */
    private int[] crossRanges;
    private CudaTensor crossRangesOnDevice;
    /** Where paged_decode takes the cross-attention: the ranges it was given, as its batch of single tokens over block tables. */
    private int[] crossRowsRanges;
    private BatchOnDevice crossRows;
    /**
     * paged_decode's per-partition results. One buffer serves every layer: each layer's decode
     * launch has merged them (its last blocks) before the next layer's writes them.
     */
    private final KeptBuffer decodePartials;
    /**
     * The kept buffers' first size: room for a batch of 64 BART or Llama-3-8B decode partials or
     * stacked products, so that the first larger batch does not replace them under the graphs
     * captured so far (they come out of the profiling margin, PROFILE_MARGIN_BYTES in the engine).
     */
    private static final long KEPT_BUFFER_LEAST_BYTES = 4L << 20;
    /** paged_decode's counters: 16 384 (token, KV head) pairs. */
    private static final long DECODE_COUNTERS_LEAST_BYTES = 64L << 10;
    private final KeptBuffer stackedProducts;
    /** A 4-bit weight dequantized for a product of many rows (one weight at a time, reused by the next). */
    private final KeptBuffer int4Dense;
    /** x in a 4-bit weight's packed input order (act-order). */
    private final KeptBuffer int4Permuted;
    /** gemm_int4_wide's float32 sums of each slice of k, [slices × rows of x, rows of the weight]. */
    private final KeptBuffer int4Partials;
    /** Whether this device gives every gemm_int4 kernel its shared memory (asked once). */
    private Boolean int4KernelsSupported;
    /** Persistent dequantized copies of 4-bit weights for kernels that read only 16-bit ones (experts, headwise products). */
    private final Map<Int4CudaWeight, CudaTensor> denseInt4Copies = new WeakHashMap<>();
    /** linearAddRmsNorm's partial products, one slice of K each. */
    private final KeptBuffer splitProductParts;
    /**
     * This backend's STRIDED_DECODE_QKV and SPLIT_PRODUCT_SLICES, which {@link #useDecodeFusions}
     * sets for tests of one path or the other whatever the system properties say.
     */
    private boolean stridedDecodeQkv = STRIDED_DECODE_QKV;
    private int splitProductSlices = SPLIT_PRODUCT_SLICES;
    /** The fewest weights of a row a gemv warp takes on this device (GEMV_SHORTEST_PART_SET). */
    private final int gemvShortestPart;
    private final KeptBuffer decodeCounterBuffer;
    private DeviceBuffer zeroedDecodeCounters;
    private final CudaGraphs graphs;
    /** The graph being captured or replayed, or null. */
    private GraphRecording recording;
    private boolean closed;

    /** A float32 backend on CUDA device {@code ordinal}; fails with the reason when there is none. */
    public static CudaBackend open(int ordinal) {
        return open(ordinal, DType.F32);
    }

    /**
     * A backend on CUDA device {@code ordinal} computing in {@code activationType} (F32, BF16 or
     * F16); fails with the reason when there is no device.
     */
    public static CudaBackend open(int ordinal, DType activationType) {
        return open(ordinal, activationType, CUBLAS_LT);
    }

    /** Which products go through the searched cuBLASLt algorithms ({@code jvllm.cuda.cublasLt}). */
    enum ProductTuning {
        /** None: every product through cublasGemmEx. */
        OFF,
        /** Those of captured passes (decode graphs), searched when a graph is first captured. */
        CAPTURED,
        /** Every product of up to cublasLtMaxTokens rows, eager ones searched on first use. */
        ALL;

        static ProductTuning parse(String value) {
            return switch (value.trim().toLowerCase(java.util.Locale.ROOT)) {
                case "off", "false" -> OFF;
                case "captured" -> CAPTURED;
                case "all", "true" -> ALL;
                default -> throw new JvllmException("jvllm.cuda.cublasLt is '" + value
                        + "'; it takes captured (the default), all or off");
            };
        }
    }

    /** As {@link #open(int, DType)}, with the tuned cuBLASLt products as {@code tuning} says, whatever {@code jvllm.cuda.cublasLt} does. */
    static CudaBackend open(int ordinal, DType activationType, ProductTuning tuning) {
        return open(ordinal, activationType, tuning, KernelCompiler.defaultCacheDirectory());
    }

    /**
     * As {@link #open(int, DType, ProductTuning)}, with the tuned products' chosen algorithms kept in
     * (and taken from) {@code keptAlgorithms} ({@link TunedProductsFile}), or in no file where it is null.
     */
    static CudaBackend open(int ordinal, DType activationType, ProductTuning tuning, java.nio.file.Path keptAlgorithms) {
        if (activationType != DType.F32 && activationType != DType.BF16 && activationType != DType.F16) {
            throw new JvllmException("the CUDA backend computes in float32, bfloat16 or float16, not " + activationType);
        }
        if (DECODE_TILED_PARTITION < 1 || DECODE_TILED_SHORTEST_PARTITION < 1) {
            throw new JvllmException("jvllm.cuda.decodePartition (" + DECODE_TILED_PARTITION
                    + ") and jvllm.cuda.decodeShortestPartition (" + DECODE_TILED_SHORTEST_PARTITION + ") must be positive");
        }
        if (GEMV_SHORTEST_PART_SET != null && GEMV_SHORTEST_PART_SET < 8) {
            throw new JvllmException("jvllm.cuda.gemvShortestPart (" + GEMV_SHORTEST_PART_SET + ") must be at least 8");
        }
        Nvrtc nvrtc = Nvrtc.get();
        Cublas cublas = Cublas.get();
        return new CudaBackend(CudaContext.open(ordinal), activationType, nvrtc, cublas, tuning,
                KernelCompiler.defaultCacheDirectory(), keptAlgorithms);
    }

    private CudaBackend(CudaContext context, DType activationType, Nvrtc nvrtc, Cublas cublas, ProductTuning tuning,
                        java.nio.file.Path kernelCache, java.nio.file.Path keptAlgorithms) {
        this.context = context;
        this.activationType = activationType;
        this.pieceElements = 16 / activationType.byteSize();
        try {
            this.memory = new DeviceMemory(context);
            this.kernels = new KernelLauncher(context.driver,
                    new KernelCompiler(nvrtc, context.architecture(), kernelCache), activationType, context.stream,
                    context.computeMajor >= 9 && PROGRAMMATIC_LAUNCHES);
            if (KernelTimes.ENABLED) {
                kernelTimer = new KernelTimes.Timer(context, context.stream);
                kernels.setTimer(kernelTimer);
            }
            this.gemvPrefetchBytes = context.computeMajor >= 9 && PROGRAMMATIC_LAUNCHES ? GEMV_PREFETCH_BYTES : 0;
            this.gemvShortestPart = GEMV_SHORTEST_PART_SET != null ? GEMV_SHORTEST_PART_SET
                    : gemvShortestPart(context.peakMemoryBandwidth());
            log.info("CUDA backend on {}, computing in {}", context, activationType);
            this.cublas = cublas;
            this.cublasHandle = cublas.create(context.stream);
            this.cublasWorkspace = memory.allocate(CUBLAS_WORKSPACE_BYTES, DeviceMemory.Kind.PERSISTENT);
            cublas.setWorkspace(cublasHandle, cublasWorkspace.address(), CUBLAS_WORKSPACE_BYTES);
            this.one = hostArena.allocateFrom(JAVA_FLOAT, 1f);
            this.zero = hostArena.allocateFrom(JAVA_FLOAT, 0f);
            this.tunedProducts = tuning != ProductTuning.OFF
                    ? TunedProducts.open(context, memory, activationType, cublasWorkspace, one, zero,
                    CUBLAS_LT_CANDIDATES, keptAlgorithms, tuning == ProductTuning.ALL) : null;
            this.errors = new DeviceErrors(context, memory);
            this.staging = context.driver.allocateHost(STAGING_BYTES);
            this.graphs = new CudaGraphs(context, memory);
            this.decodePartials = new KeptBuffer(memory, KEPT_BUFFER_LEAST_BYTES);
            this.stackedProducts = new KeptBuffer(memory, KEPT_BUFFER_LEAST_BYTES);
            this.int4Dense = new KeptBuffer(memory, KEPT_BUFFER_LEAST_BYTES);
            this.int4Permuted = new KeptBuffer(memory, KEPT_BUFFER_LEAST_BYTES);
            this.int4Partials = new KeptBuffer(memory, KEPT_BUFFER_LEAST_BYTES);
            this.splitProductParts = new KeptBuffer(memory, KEPT_BUFFER_LEAST_BYTES);
            this.decodeCounterBuffer = new KeptBuffer(memory, DECODE_COUNTERS_LEAST_BYTES);
        } catch (RuntimeException e) {
            context.close();
            throw e;
        }
    }

    /** Weights are copied to the device when the model is built ({@link #weight}, {@link #stackedWeight}, {@link #transposedWeight}). */
    @Override
    public boolean readsHostWeights() {
        return false;
    }

    /** Checked against merged weights on the GPU (LoraCudaTest). */
    @Override
    public boolean runsLoraAdapters() {
        return true;
    }

    @Override
    public String name() {
        return "cuda";
    }

    @Override
    public DType activationType() {
        return activationType;
    }

    /** The device, e.g. "NVIDIA H100 80GB HBM3 (compute capability 9.0, 132 multiprocessors, 81080 MiB)". */
    public String deviceDescription() {
        return context.toString();
    }

    /** Free and total bytes of device memory, as the driver reports them now. */
    public long[] memoryInfo() {
        context.makeCurrent();
        return context.driver.memoryInfo();
    }

    /** Waits for all queued work, then reports any out-of-range index a kernel met. */
    public void synchronize() {
        drain();
    }

    /** Waits for the stream (the staged uploads with it), then reports device-side index errors. */
    private void drain() {
        if (recording != null) {
            throw new GraphRecording.Abort("the pass waits for the device (it reads a result back)",
                    GraphRecording.Abort.Remedy.NEVER);
        }
        try {
            errors.synchronizeAndCheck();
        } finally {
            stagingUsed = 0;
        }
    }

    /** Device time of the work {@code work} queues, in milliseconds (measured with events on the stream). */
    public float timeMillis(Runnable work) {
        context.makeCurrent();
        CudaDriver driver = context.driver;
        MemorySegment start = driver.createEvent();
        MemorySegment end = driver.createEvent();
        try {
            driver.record(start, context.stream);
            work.run();
            context.makeCurrent();
            driver.record(end, context.stream);
            return driver.elapsedMillis(start, end);
        } finally {
            driver.destroyEvent(start);
            driver.destroyEvent(end);
        }
    }

    /** Launches made of {@code kernel} so far (eager, or into a graph's capture): which kernel a path took, for tests. */
    long launches(Kernel kernel) {
        return kernels.launches(kernel);
    }

    // ---- CUDA graphs ------------------------------------------------------------------------

    @Override
    public boolean capturesGraphs() {
        return true;
    }

    /**
     * Launches the graph captured for {@code shape} when the pass matches it ({@link GraphRecording}
     * says how that is checked), captures one on the shape's first pass, and otherwise runs the
     * pass eagerly.
     */
    @Override
    public Tensor runCaptured(Object shape, Supplier<Tensor> pass) {
        context.makeCurrent();
        CudaGraphs.Graph graph = graphs.get(shape);
        if (graph != null) {
            graphs.awaitLastLaunch(graph);
            // Launched as soon as the pass has written its uploads (EARLY_GRAPH_LAUNCH), so that the
            // device runs the graph while the host checks the rest of the pass's calls.
            boolean[] launched = {false};
            KernelTimes.Timer timing = kernels.eagerTimer();
            graph.recording().startReplay(EARLY_GRAPH_LAUNCH ? () -> {
                launchTimed(graph, shape, timing);
                launched[0] = true;
            } : null);
            Tensor result;
            try {
                result = recorded(graph.recording(), pass);
            } catch (GraphRecording.Abort mismatch) {
                // A graph launched early ran on the inputs of this pass with the captured calls: it
                // wrote only buffers the graph holds, and the eager pass, queued after it, writes
                // the outputs again.
                graphs.drop(shape, mismatch);
                return pass.get();
            }
            if (!launched[0]) launchTimed(graph, shape, timing);
            graphs.replayed(shape);
            return result;
        }
        if (!graphs.mayCapture(shape)) {
            return pass.get();
        }
        GraphRecording capture = graphs.startCapture(shape);
        context.driver.beginCapture(context.stream);
        Tensor result;
        CudaGraphs.Graph made;
        try {
            result = recorded(capture, pass);
            made = graphs.finishCapture(shape, capture, context.driver.endCapture(context.stream));
        } catch (RuntimeException failure) {
            // Also when ending the capture or instantiating fails (a call the capture could not
            // record invalidates it): nothing of the pass ran, so it runs eagerly.
            context.driver.abandonCapture(context.stream);
            graphs.captureFailed(shape, capture, failure);
            // The capture may have grown the decode counters, and their zeroing was only recorded;
            // a capture given up mid-pass (e.g. at a product not yet tuned) must not leave them unzeroed.
            zeroedDecodeCounters = null;
            try {
                return pass.get();
            } finally {
                if (tunedProducts != null) tunedProducts.rerunEnded();
            }
        }
        launchTimed(made, shape, kernels.eagerTimer());
        return result;
    }

    /**
     * Launches a graph, timed as {@code graph <shape>} by {@code timing} (non-null while {@link
     * KernelTimes} is on; taken before a replay, during which launches are not timed): with the eager
     * launches around it timed too, a phase's wall time less its timed device time is the time the
     * device waited on the host.
     */
    private void launchTimed(CudaGraphs.Graph graph, Object shape, KernelTimes.Timer timing) {
        if (timing != null) timing.begin("graph " + shape);
        graphs.launch(graph);
        if (timing != null) timing.end();
    }

    /** The CUDA graphs kept now, one per pass shape. */
    public int capturedGraphs() {
        return graphs.size();
    }

    /** Passes run as a graph launch so far (captures included). */
    public long graphLaunches() {
        return graphs.launches();
    }

    /** Runs the pass with {@code recording} noting (or checking) its calls. */
    private Tensor recorded(GraphRecording recording, Supplier<Tensor> pass) {
        this.recording = recording;
        kernels.setRecording(recording);
        memory.setRecording(true, recording.replaying());
        forgetUploadedBatches();
        try {
            Tensor result = pass.get();
            if (recording.replaying()) recording.finishReplay();
            return result;
        } finally {
            this.recording = null;
            kernels.setRecording(null);
            memory.setRecording(false, false);
            forgetUploadedBatches();
        }
    }

    /** The batch metadata uploaded for a pass stays with that pass: a recorded one lives in its graph's area. */
    private void forgetUploadedBatches() {
        uploadedBatch = null;
        uploadedFor = null;
        uploadedBatchData = null;
        encoderBatch = null;
        encoderSequences = null;
        crossRanges = null;
        crossRangesOnDevice = null;
        crossRowsRanges = null;
        crossRows = null;
    }

    // ---- memory ----------------------------------------------------------------------------

    @Override
    public Tensor weight(WeightTensor source) {
        DType type = source.dtype();
        requireWeightType(source.name(), type);
        long cols = source.rank() == 0 ? 1 : source.dim(-1);
        long rows = cols == 0 ? 0 : source.elementCount() / cols;
        if (rows > Integer.MAX_VALUE || cols > Integer.MAX_VALUE) {
            throw new JvllmException("tensor '" + source.name() + "' has " + rows + " × " + cols
                    + " elements; the CUDA backend needs both below 2^31");
        }
        long bytes = source.elementCount() * type.byteSize();
        if (source.data().byteSize() != bytes) {
            throw new JvllmException("tensor '" + source.name() + "' has " + source.data().byteSize()
                    + " bytes of data but its shape needs " + bytes);
        }
        return uploadWeight(source.data(), type, (int) rows, (int) cols, source.name());
    }

    /**
     * The parts in one persistent buffer, their rows in order, where all are 2-D checkpoint
     * tensors of the activation type with one width (others, converted on upload, stay apart).
     */
    @Override
    public Tensor stackedWeight(List<WeightTensor> parts) {
        if (!STACKED_WEIGHTS || parts.isEmpty()) return null;
        WeightTensor first = parts.getFirst();
        long rows = 0;
        for (WeightTensor part : parts) {
            requireWeightType(part.name(), part.dtype());
            if (part.rank() != 2 || part.dtype() != activationType || part.dim(-1) != first.dim(-1)
                    || part.data().byteSize() != part.elementCount() * part.dtype().byteSize()) {
                return null;
            }
            rows += part.dim(0);
        }
        long cols = first.dim(-1);
        if (rows > Integer.MAX_VALUE || cols > Integer.MAX_VALUE) return null;
        DeviceBuffer buffer = memory.allocate(rows * cols * activationType.byteSize(), DeviceMemory.Kind.PERSISTENT);
        long offset = 0;
        for (WeightTensor part : parts) {
            copyToDevice(part.data(), buffer.address() + offset, part.data().byteSize(), false);
            offset += part.data().byteSize();
        }
        String name = String.join(" + ", parts.stream().map(WeightTensor::name).toList());
        return new CudaTensor(buffer, 0, activationType, (int) rows, (int) cols, name);
    }

    @Override
    public boolean readsInt4Weights() {
        return INT4_WEIGHTS;
    }

    @Override
    public Tensor int4Weight(Int4Weight source) {
        return uploadInt4(List.of(source));
    }

    /** The parts as one 4-bit weight where they share their width, grouping and input order; else null. */
    @Override
    public Tensor stackedInt4Weight(List<Int4Weight> parts) {
        if (!STACKED_WEIGHTS || parts.isEmpty()) return null;
        Int4Weight first = parts.getFirst();
        long rows = 0;
        for (Int4Weight part : parts) {
            if (part.cols() != first.cols() || part.groupSize() != first.groupSize()
                    || !Arrays.equals(part.inputOrder(), first.inputOrder())) {
                return null;
            }
            rows += part.rows();
        }
        return rows > Integer.MAX_VALUE ? null : uploadInt4(parts);
    }

    /** The parts' rows, in order, as one 4-bit weight in persistent memory: words, each group's (scale, zero), the order. */
    private Int4CudaWeight uploadInt4(List<Int4Weight> parts) {
        Int4Weight first = parts.getFirst();
        int rows = parts.stream().mapToInt(Int4Weight::rows).sum(), cols = first.cols(), groups = first.groupsPerRow();
        String name = String.join(" + ", parts.stream().map(Int4Weight::name).toList());
        DeviceBuffer words = memory.allocate((long) rows * cols / 2, DeviceMemory.Kind.PERSISTENT);
        float[] params = new float[Math.multiplyExact(rows, 2 * groups)];
        long offset = 0;
        int row = 0;
        for (Int4Weight part : parts) {
            copyToDevice(part.words(), words.address() + offset, part.words().byteSize(), false);
            offset += part.words().byteSize();
            for (int r = 0; r < part.rows(); r++) {
                for (int group = 0; group < groups; group++) {
                    int at = Int4CudaWeight.paramsIndex(row + r, group, groups);
                    params[at] = part.scales()[r * groups + group];
                    params[at + 1] = part.zeros()[r * groups + group];
                }
            }
            row += part.rows();
        }
        CudaTensor order = first.inputOrder() == null ? null
                : upload(MemorySegment.ofArray(first.inputOrder()), DType.I32, 1, cols, name + " input order", DeviceMemory.Kind.PERSISTENT);
        return new Int4CudaWeight(new CudaTensor(words, 0, DType.I32, rows / Int4Weight.TILE_ROWS, 2 * cols, name),
                upload(MemorySegment.ofArray(params), DType.F32, rows / Int4Weight.TILE_ROWS, 2 * Int4Weight.TILE_ROWS * groups,
                        name + " scales", DeviceMemory.Kind.PERSISTENT),
                order, first.groupSize(), activationType, name);
    }

    @Override
    public Tensor transposedWeight(WeightTensor source) {
        if (source.rank() != 2) {
            throw new JvllmException("tensor '" + source.name() + "' must be 2-dimensional to be transposed");
        }
        DType type = source.dtype();
        requireWeightType(source.name(), type);
        long in = source.dim(0), out = source.dim(1);
        int size = type.byteSize();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment transposed = arena.allocate(in * out * size);
            MemorySegment data = source.data();
            for (long i = 0; i < in; i++) {
                for (long o = 0; o < out; o++) {
                    MemorySegment.copy(data, (i * out + o) * size, transposed, (o * in + i) * size, size);
                }
            }
            return uploadWeight(transposed, type, Math.toIntExact(out), Math.toIntExact(in), source.name() + "ᵀ");
        }
    }

    @Override
    public Tensor constant(float[] values, int rows, int cols) {
        return uploadValues(values, rows, cols, "constant", DeviceMemory.Kind.PERSISTENT);
    }

    /** Stream-ordered, through the page-locked staging: no cuMemAlloc, and no cuMemFree (a device-wide sync) later. */
    @Override
    public Tensor stepValues(float[] values, int rows, int cols) {
        return uploadValues(values, rows, cols, "step values", DeviceMemory.Kind.STREAM_ORDERED);
    }

    private CudaTensor uploadValues(float[] values, int rows, int cols, String name, DeviceMemory.Kind kind) {
        if ((long) rows * cols != values.length) {
            throw new IllegalArgumentException(values.length + " values do not fill " + rows + " × " + cols);
        }
        return upload(MemorySegment.ofArray(values), DType.F32, rows, cols, name, kind);
    }

    @Override
    public Tensor allocate(int rows, int cols) {
        if (rows < 0 || cols < 0) {
            throw new IllegalArgumentException("cannot allocate " + rows + " × " + cols + " activations");
        }
        DType type = activationType();
        if (recording != null) {
            // Activation buffers outlive the pass (the models keep them): they are made by an eager pass.
            throw new GraphRecording.Abort("the pass allocates new activation buffers",
                    GraphRecording.Abort.Remedy.RETRY);
        }
        DeviceBuffer buffer = memory.allocate((long) rows * cols * type.byteSize(), DeviceMemory.Kind.STREAM_ORDERED);
        return new CudaTensor(buffer, 0, type, rows, cols, "activation");
    }

    @Override
    public Tensor indices(int[] values) {
        return upload(MemorySegment.ofArray(values), DType.I32, 1, values.length, "indices",
                DeviceMemory.Kind.STREAM_ORDERED);
    }

    /** A checkpoint tensor in device memory, converted on the device to the activation type. */
    private CudaTensor uploadWeight(MemorySegment data, DType type, int rows, int cols, String name) {
        if (type == activationType) {
            return upload(data, type, rows, cols, name, DeviceMemory.Kind.PERSISTENT);
        }
        CudaTensor raw = upload(data, type, rows, cols, name, DeviceMemory.Kind.STREAM_ORDERED);
        CudaTensor converted = converted(raw, name);
        memory.free(raw.buffer());
        return converted;
    }

    /** A persistent copy of {@code source} in the activation type. */
    private CudaTensor converted(CudaTensor source, String name) {
        long n = source.elementCount();
        DeviceBuffer buffer = memory.allocate(n * activationType.byteSize(), DeviceMemory.Kind.PERSISTENT);
        CudaTensor target = new CudaTensor(buffer, 0, activationType, source.rows(), source.cols(), name);
        context.makeCurrent();
        kernels.launch(Kernel.CONVERT_ELEMENTS, elementwiseBlocks(n), ELEMENTWISE_THREADS,
                source, source.typeCode(), target, target.typeCode(), n);
        return target;
    }

    /** Copies host data (heap or native) into a new device buffer; the host side may change after return. */
    private CudaTensor upload(MemorySegment data, DType type, int rows, int cols, String name, DeviceMemory.Kind kind) {
        long bytes = (long) rows * cols * type.byteSize();
        DeviceBuffer buffer = recording != null && kind == DeviceMemory.Kind.STREAM_ORDERED
                ? recording.allocate(bytes) : memory.allocate(bytes, kind);
        CudaTensor tensor = new CudaTensor(buffer, 0, type, rows, cols, name);
        copyToDevice(data, tensor.address(), bytes, kind == DeviceMemory.Kind.STREAM_ORDERED);
        return tensor;
    }

    /**
     * Queues a copy of host data to the device. Small ones go through the page-locked staging
     * area and do not wait for the stream, as do a step's heap arrays too large for it ({@code
     * stepUpload}: through an {@link UploadSlot}); others are copied from pageable memory, which the
     * driver does only after the work queued before has finished (weights and constants, at load).
     */
    private void copyToDevice(MemorySegment data, long address, long bytes, boolean stepUpload) {
        if (bytes == 0) return;
        context.makeCurrent();
        if (recording != null) {
            MemorySegment slot = recording.upload(data, address, bytes);
            if (!recording.replaying()) context.driver.copyToDevice(address, slot, bytes, context.stream);
            return;
        }
        if (bytes <= STAGING_BYTES - stagingUsed) {
            MemorySegment slot = staging.asSlice(stagingUsed, bytes);
            MemorySegment.copy(data, 0, slot, 0, bytes);
            context.driver.copyToDevice(address, slot, bytes, context.stream);
            stagingUsed = (stagingUsed + bytes + 15) & ~15L;
            return;
        }
        if (stepUpload && !data.isNative() && bytes > STAGING_BYTES && bytes <= UPLOAD_SLOT_MAX_BYTES
                && uploadSlots[nextUploadSlot].copy(data, address, bytes)) {
            nextUploadSlot = (nextUploadSlot + 1) % uploadSlots.length;
            return;
        }
        stagingUsed = 0;  // a copy from pageable memory drains the stream first: earlier staged copies are done
        if (data.isNative()) {
            context.driver.copyToDevice(address, data, bytes, context.stream);
            return;
        }
        // The driver can only read native memory; pageable sources are staged before the call returns.
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment staged = arena.allocate(bytes, 16);
            MemorySegment.copy(data, 0, staged, 0, bytes);
            context.driver.copyToDevice(address, staged, bytes, context.stream);
        }
    }

    /**
     * Uploads from the Java heap too large for the staging and at most this size go through an
     * {@link UploadSlot}; larger ones are copied from pageable memory, which waits for the stream.
     * 64 MiB holds a vision tower pass's pixels (Phi-3-Vision's 17 crops: 23 MB of float32).
     */
    private static final long UPLOAD_SLOT_MAX_BYTES = 64L << 20;

    /**
     * Page-locked memory that a heap array is copied into and uploaded from without waiting for the
     * stream: a copy from pageable memory would wait for all work queued before it, which left the
     * device idle while the host prepared the rest of a step with images. The slot is reused once
     * its previous copy has finished (an event recorded after it), and grows to the largest upload.
     */
    private final class UploadSlot {
        private MemorySegment area;
        private MemorySegment copied;

        /** Queues the copy; false (nothing queued) where the page-locked memory it needs cannot be had. */
        boolean copy(MemorySegment data, long address, long bytes) {
            CudaDriver driver = context.driver;
            if (copied == null) {
                copied = driver.createEvent();
            } else {
                driver.waitFor(copied);
            }
            if (area == null || area.byteSize() < bytes) {
                if (area != null) driver.freeHost(area);
                area = null;  // no dangling area if the allocation below fails
                try {
                    area = driver.allocateHost(Math.min(UPLOAD_SLOT_MAX_BYTES, Math.max(bytes, 1L << 20) * 2));
                } catch (CudaException e) {
                    log.warn("no page-locked memory for a {}-byte upload ({}); it is copied from pageable memory", bytes,
                            e.getMessage());
                    return false;
                }
            }
            MemorySegment.copy(data, 0, area, 0, bytes);
            driver.copyToDevice(address, area, bytes, context.stream);
            driver.record(copied, context.stream);
            return true;
        }

        void release() {
            if (area != null) context.driver.freeHost(area);
            if (copied != null) context.driver.destroyEvent(copied);
        }
    }

    @Override
    public float[] toFloatArray(Tensor tensor) {
        CudaTensor t = cuda(tensor, "toFloatArray", "tensor");
        requireNotRecording("reads a tensor back");
        if (t.elementCount() > Integer.MAX_VALUE - 8) {
            throw new JvllmException(t + " is too large for a Java array");
        }
        int n = (int) t.elementCount();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment host = arena.allocate(Math.max(1, t.byteSize()), 16);
            context.makeCurrent();
            if (n > 0) context.driver.copyToHost(host, t.address(), t.byteSize(), context.stream);
            drain();
            return widened(host, t.dtype(), n);
        }
    }

    /**
     * {@code n} elements of {@code type} in host memory as float32: one bulk copy, then a loop
     * over a plain array for the 16-bit types (a sampled step at batch 64 reads back 8M logits).
     */
    static float[] widened(MemorySegment host, DType type, int n) {
        float[] result = new float[n];
        switch (type) {
            case F32 -> MemorySegment.copy(host, JAVA_FLOAT, 0, result, 0, n);
            case BF16, F16 -> {
                short[] bits = new short[n];
                MemorySegment.copy(host, ValueLayout.JAVA_SHORT, 0, bits, 0, n);
                if (type == DType.BF16) {
                    for (int i = 0; i < n; i++) result[i] = Float.intBitsToFloat(bits[i] << 16);
                } else {
                    for (int i = 0; i < n; i++) result[i] = Float.float16ToFloat(bits[i]);
                }
            }
            case I32 -> {
                for (int i = 0; i < n; i++) result[i] = host.getAtIndex(JAVA_INT, i);
            }
            default -> throw new IllegalStateException("unexpected tensor type " + type);
        }
        return result;
    }

    @Override
    public java.util.Optional<dev.jvllm.spi.DeviceMemory> deviceMemory() {
        synchronize();
        long[] info = memoryInfo();
        return java.util.Optional.of(new dev.jvllm.spi.DeviceMemory(info[0], info[1]));
    }

    /** The argmax of each row on the device: only one int per row comes back, not the row. */
    @Override
    public int[] argmaxRows(Tensor tensor) {
        CudaTensor t = cuda(tensor, "argmaxRows", "tensor");
        requireActivation("argmaxRows", "tensor", t);
        requireNotRecording("reads an argmax back");
        int rows = t.rows();
        if (rows == 0) return new int[0];
        context.makeCurrent();
        long resultBytes = (long) rows * Integer.BYTES;
        DeviceBuffer result = memory.allocate(resultBytes, DeviceMemory.Kind.STREAM_ORDERED);
        try (Arena arena = Arena.ofConfined()) {
            queueArgmax(t, result.address());
            MemorySegment host = arena.allocate(resultBytes, 16);
            context.driver.copyToHost(host, result.address(), resultBytes, context.stream);
            drain();
            return host.toArray(JAVA_INT);
        } finally {
            memory.free(result);
        }
    }

    /** Queues argmax_rows (and argmax_combine over its slices) of {@code t}'s rows into {@code result} (ints). */
    private void queueArgmax(CudaTensor t, long result) {
        int rows = t.rows();
        int slices = argmaxSlices(rows, t.cols());
        long candidates = slices == 1 ? 0 : (long) rows * slices;
        DeviceBuffer best = slices == 1 ? null
                : memory.allocate(candidates * (Float.BYTES + Integer.BYTES), DeviceMemory.Kind.STREAM_ORDERED);
        try {
            long bestValues = best == null ? 0 : best.address();
            long bestColumns = best == null ? 0 : bestValues + candidates * Float.BYTES;
            kernels.launchGrid(Kernel.ARGMAX_ROWS, rows, slices, rowThreads(Math.min(t.cols(), 1024)),
                    t, t.cols(), slices, bestValues, bestColumns, result);
            if (slices > 1) {
                kernels.launch(Kernel.ARGMAX_COMBINE, rows, 32, bestValues, bestColumns, slices, result);
            }
        } finally {
            if (best != null) memory.free(best);
        }
    }

    /**
     * The rows' argmax into the kept device buffer {@link #tokenIds} feeds from, and its copy to
     * one of two page-locked slots (with the kernels' error record) behind an event: the host
     * reads it when it awaits, and may queue the next step first. Steps of more rows than the
     * buffer holds are read at once, not feedable.
     */
    @Override
    public SampledRows argmaxRowsAsync(Tensor tensor) {
        CudaTensor t = cuda(tensor, "argmaxRowsAsync", "tensor");
        requireActivation("argmaxRowsAsync", "tensor", t);
        requireNotRecording("reads an argmax back");
        int rows = t.rows();
        if (rows == 0 || rows > SAMPLED_ROWS) return Backend.super.argmaxRowsAsync(tensor);
        context.makeCurrent();
        SampledSlot slot = nextSlot();
        queueArgmax(t, sampledTokens.address());
        return readBackLater(slot, rows);
    }

    /** The landing slot for the next result; its last result was read before the step after it was queued (else this waits). */
    private SampledSlot nextSlot() {
        SampledSlot slot = sampledSlots()[nextSampledSlot];
        nextSampledSlot ^= 1;
        slot.reuse();
        return slot;
    }

    /** Queues the copy of the sampled-token buffer's first {@code rows} to {@code slot}, behind its event. */
    private SampledRows readBackLater(SampledSlot slot, int rows) {
        context.driver.copyToHost(slot.host, sampledTokens.address(), (long) rows * Integer.BYTES, context.stream);
        errors.queueCopy(slot.errors);
        context.driver.record(slot.done, context.stream);
        SampledRows result = slot.start(rows);
        lastSampled = result;
        return result;
    }

    /**
     * sample_rows (sampling.cu): each row's token drawn where its logits are, a cluster of blocks a row, into
     * the kept buffer {@link #tokenIds} feeds from; only a token per row comes back.
     */
    @Override
    public SampledRows sampleRowsAsync(Tensor tensor, PlainSampling sampling) {
        CudaTensor t = cuda(tensor, "sampleRowsAsync", "tensor");
        requireActivation("sampleRowsAsync", "tensor", t);
        requireNotRecording("reads sampled tokens back");
        int rows = t.rows();
        sampling.requireRows(rows);
        if (rows == 0 || rows > SAMPLED_ROWS) return Backend.super.sampleRowsAsync(tensor, sampling);
        context.makeCurrent();
        SampledSlot slot = nextSlot();
        CudaTensor temperatures = upload(MemorySegment.ofArray(sampling.temperatures()), DType.F32, 1, rows,
                "temperatures", DeviceMemory.Kind.STREAM_ORDERED);
        CudaTensor topKs = (CudaTensor) indices(sampling.topKs());
        // Doubles travel as pairs of 32-bit words; the kernel reads them as double.
        CudaTensor topPs = upload(MemorySegment.ofArray(sampling.topPs()), DType.I32, 1, 2 * rows, "topPs",
                DeviceMemory.Kind.STREAM_ORDERED);
        CudaTensor minPs = upload(MemorySegment.ofArray(sampling.minPs()), DType.F32, 1, rows, "minPs",
                DeviceMemory.Kind.STREAM_ORDERED);
        CudaTensor uniforms = upload(MemorySegment.ofArray(sampling.uniforms()), DType.I32, 1, 2 * rows, "uniforms",
                DeviceMemory.Kind.STREAM_ORDERED);
        // At most SAMPLE_CHUNK_ROWS rows a launch (their scratch weights: 256 rows of a 128k
        // vocabulary would take 131 MB), the launches one after another on the stream. Each row is
        // drawn by a cluster of blocks, each with a slice of the vocabulary in a slab of whole
        // SAMPLE_THREADS-wide rows (sampling.cu's sample_slice, sample_run): as many blocks a row as
        // fill the SMs once, up to SAMPLE_CLUSTER.
        int chunk = Math.min(rows, SAMPLE_CHUNK_ROWS);
        long scratchSlots = 0;
        for (int first = 0; first < rows; first += chunk) {
            int n = Math.min(chunk, rows - first);
            scratchSlots = Math.max(scratchSlots, (long) n * sampleCluster(n) * sampleSlabSlots(t.cols(), sampleCluster(n)));
        }
        DeviceBuffer weights = memory.allocate(scratchSlots * Float.BYTES, DeviceMemory.Kind.STREAM_ORDERED);
        try {
            for (int first = 0; first < rows; first += chunk) {
                int n = Math.min(chunk, rows - first), cluster = sampleCluster(n);
                kernels.launchClustered(Kernel.SAMPLE_ROWS, n * cluster, cluster, SAMPLE_THREADS, t, t.cols(), first,
                        temperatures, topKs, topPs, minPs, uniforms, weights.address(), sampledTokens.address());
            }
        } finally {
            memory.free(weights);
            for (CudaTensor upload : List.of(temperatures, topKs, topPs, minPs, uniforms)) memory.free(upload.buffer());
        }
        return readBackLater(slot, rows);
    }

    @Override
    public boolean samplesOnDevice() {
        return DEVICE_SAMPLING;
    }

    /** Off ({@code -Djvllm.cuda.deviceSampling=false}): sampled rows are copied back and drawn on the host, for A/B runs. */
    private static final boolean DEVICE_SAMPLING =
            Boolean.parseBoolean(System.getProperty("jvllm.cuda.deviceSampling", "true"));

    /** sampling.cu's SAMPLE_THREADS, a block's threads. */
    private static final int SAMPLE_THREADS = 1024;
    /** sampling.cu's SAMPLE_CLUSTER on compute capability 9.0 and later: the most blocks that draw a row together. */
    private static final int SAMPLE_CLUSTER = 8;

    /**
     * Blocks a row for a launch of {@code rows}: the largest power of two up to SAMPLE_CLUSTER with
     * which the rows' blocks fit the SMs in one wave (one before compute capability 9.0, which has
     * no clusters). One row takes 8 SMs; 64 rows take two blocks each.
     */
    int sampleCluster(int rows) {
        if (context.computeMajor < 9) return 1;
        int cluster = SAMPLE_CLUSTER;
        while (cluster > 1 && (long) rows * cluster > context.multiprocessors) cluster /= 2;
        return cluster;
    }

    /** The device this backend runs on (its compute capability and multiprocessors). */
    CudaContext context() {
        return context;
    }

    /** Slots of a block's slab for a vocabulary of {@code vocab} drawn by {@code cluster} blocks (sampling.cu's sample_run). */
    private static long sampleSlabSlots(int vocab, int cluster) {
        int slice = (vocab + cluster - 1) / cluster;
        return (long) ((slice + SAMPLE_THREADS - 1) / SAMPLE_THREADS) * SAMPLE_THREADS;
    }
    /** Rows sample_rows draws in one launch (its scratch holds their weights). */
    private static final int SAMPLE_CHUNK_ROWS = 64;

    @Override
    public boolean feedsSampledTokens() {
        return true;
    }

    @Override
    public boolean queuesWork() {
        return true;
    }

    @Override
    public Tensor tokenIds(ForwardBatch batch) {
        Tensor ids = indices(batch.tokenIds());
        int[] rows = batch.sampledTokenRows();
        if (rows == null) return ids;
        sampledSlots();
        int n = rows.length;
        kernels.launch(Kernel.TAKE_SAMPLED_TOKENS, (n + ELEMENTWISE_THREADS - 1) / ELEMENTWISE_THREADS,
                ELEMENTWISE_THREADS, ids, indices(rows), sampledTokens.address(), SAMPLED_ROWS, n);
        return ids;
    }

    /** Rows of an argmaxRowsAsync or sampleRowsAsync the device keeps for tokenIds: a step's sequences. */
    private static final int SAMPLED_ROWS = 8192;
    /** The last argmaxRowsAsync's or sampleRowsAsync's rows on the device, at an address graphs keep; made on first use. */
    private DeviceBuffer sampledTokens;
    private SampledSlot[] sampledSlots;
    private int nextSampledSlot;
    private SampledRows lastSampled;

    private SampledSlot[] sampledSlots() {
        if (sampledSlots == null) {
            if (recording != null) {
                // Its zeroing would be recorded and replayed with the graph: made by an eager pass first.
                throw new GraphRecording.Abort("the sampled-token buffer is not made yet", GraphRecording.Abort.Remedy.RETRY);
            }
            context.makeCurrent();
            sampledTokens = memory.allocate((long) SAMPLED_ROWS * Integer.BYTES, DeviceMemory.Kind.PERSISTENT);
            context.driver.fill(sampledTokens.address(), (byte) 0, sampledTokens.bytes(), context.stream);
            sampledSlots = new SampledSlot[]{new SampledSlot(), new SampledSlot()};
        }
        return sampledSlots;
    }

    /** A page-locked landing place for one argmaxRowsAsync's or sampleRowsAsync's rows and error record, and the event behind its copy. */
    private final class SampledSlot {
        final MemorySegment host = context.driver.allocateHost((long) SAMPLED_ROWS * Integer.BYTES);
        final MemorySegment errors = context.driver.allocateHost(CudaBackend.this.errors.bytes());
        final MemorySegment done = context.driver.createEvent();
        private long generation;
        private boolean unread;

        void reuse() {
            if (unread) context.driver.waitFor(done);
            unread = false;
        }

        void release() {
            context.driver.freeHost(host);
            context.driver.freeHost(errors);
            context.driver.destroyEvent(done);
        }

        SampledRows start(int rows) {
            long mine = ++generation;
            unread = true;
            return new SampledRows() {
                @Override
                public int[] await() {
                    if (generation != mine) {
                        throw new IllegalStateException("an argmax read back after two later ones: its rows were overwritten");
                    }
                    context.makeCurrent();
                    context.driver.waitFor(done);
                    unread = false;
                    CudaBackend.this.errors.check(errors);
                    return host.asSlice(0, (long) rows * Integer.BYTES).toArray(JAVA_INT);
                }

                @Override
                public boolean feedable() {
                    return lastSampled == this;
                }
            };
        }
    }

    /**
     * Column slices per row of argmax_rows: enough blocks for two per SM, each slice at least
     * ARGMAX_SHORTEST_SLICE columns. One block per row left most of the GPU idle at batch 1: a
     * 128k-column row took 49 µs on an H100.
     */
    private int argmaxSlices(int rows, int cols) {
        int bySize = Math.max(1, cols / ARGMAX_SHORTEST_SLICE);
        int byBlocks = Math.max(1, (2 * context.multiprocessors + rows - 1) / rows);
        return Math.min(bySize, Math.min(byBlocks, ARGMAX_MAX_SLICES));
    }

    private static final int ARGMAX_SHORTEST_SLICE = 2048;
    private static final int ARGMAX_MAX_SLICES = 256;

    @Override
    public KvCache allocateKvCache(KvCacheSpec spec) {
        DType type = activationType();
        long poolBytes;
        long totalBytes;
        try {
            long slotBytes = Math.multiplyExact((long) spec.kvHeads() * spec.headDim(), type.byteSize());
            poolBytes = Math.multiplyExact(Math.multiplyExact((long) spec.numBlocks(), spec.blockSize()), slotBytes);
            totalBytes = Math.multiplyExact(poolBytes, (long) spec.poolsPerLayer() * spec.layers());
        } catch (ArithmeticException overflow) {
            throw new JvllmException("KV cache " + spec + " is too large to address");
        }
        long free = memoryInfo()[0];
        if (totalBytes > free) {
            throw new JvllmException("KV cache " + spec + " needs " + (totalBytes >> 20) + " MiB but "
                    + context.deviceName + " has " + (free >> 20) + " MiB free; use fewer blocks");
        }
        DeviceBuffer storage = memory.allocate(totalBytes, DeviceMemory.Kind.PERSISTENT);
        // Zeroed so that a read of a slot nothing wrote gives 0, as on the CPU, not old data.
        context.driver.fill(storage.address(), (byte) 0, totalBytes, context.stream);
        return new CudaKvCache(spec, type, memory, storage, poolBytes);
    }

    // ---- kernels ----------------------------------------------------------------------------

    @Override
    public void embedding(Tensor table, Tensor ids, Tensor out) {
        gather("embedding", cuda(table, "embedding", "table"), cuda(ids, "embedding", "ids"), cuda(out, "embedding", "out"));
    }

    @Override
    public void gatherRows(Tensor x, Tensor rows, Tensor out) {
        gather("gatherRows", cuda(x, "gatherRows", "x"), cuda(rows, "gatherRows", "rows"), cuda(out, "gatherRows", "out"));
    }

    private void gather(String kernel, CudaTensor source, CudaTensor indices, CudaTensor out) {
        requireActivation(kernel, "out", out);
        KernelShapes.checkGather(kernel, source, indices, out);
        int count = (int) indices.elementCount();
        context.makeCurrent();
        kernels.launch(Kernel.GATHER_ROWS, count, rowThreads(source.cols()),
                source, source.typeCode(), source.rows(), source.cols(), indices, out, errors.buffer());
    }

    @Override
    public void linear(Tensor x, Tensor weight, Tensor bias, Tensor out) {
        if (weight instanceof Int4CudaWeight packed) {
            int4Linear(cuda(x, "linear", "x"), packed, bias == null ? null : cuda(bias, "linear", "bias"), cuda(out, "linear", "out"));
            return;
        }
        CudaTensor input = cuda(x, "linear", "x");
        CudaTensor w = cuda(weight, "linear", "weight");
        CudaTensor b = bias == null ? null : cuda(bias, "linear", "bias");
        CudaTensor output = cuda(out, "linear", "out");
        requireActivation("linear", "x", input);
        checkProduct("linear", input, w, b, output);
        int tokens = input.rows(), in = w.cols(), outFeatures = w.rows();
        if (tokens == 0 || outFeatures == 0) return;
        context.makeCurrent();
        if (w.dtype() != activationType) {
            // A weight made from values (constant()) rather than uploaded from a checkpoint.
            w = convertedWeights.computeIfAbsent(w, original -> converted(original, original.toString()));
        }
        if (gemvFits(input, w)) {
            int split = gemvSplit(in, gemvShortestPart);
            if (b != null) {
                // gemv_rows3 as one product adds the bias as it writes each row: one launch instead of
                // the product and add_bias_rows (BART-large's decode steps had five add_bias_rows a layer).
                if (kernels.wantsLabels()) kernels.labelNext("gemv_rows N=" + outFeatures + " K=" + in + " + bias");
                kernels.launch(Kernel.GEMV_ROWS3, gemvBlocks(outFeatures, split), 32 * GEMV_WARPS,
                        w, null, null, b, null, null, b.typeCode(), 0, 0, output, null, null,
                        outFeatures, 0, 0, input, in, split, gemvPrefetchBytes);
                return;
            }
            if (kernels.wantsLabels()) kernels.labelNext("gemv_rows N=" + outFeatures + " K=" + in);
            kernels.launch(Kernel.GEMV_ROWS, gemvBlocks(outFeatures, split), 32 * GEMV_WARPS,
                    w, input, output, outFeatures, in, split, gemvPrefetchBytes);
        } else {
            if (gemm(input, w, output, tokens, in, outFeatures, b)) return;
        }
        addBias(output, b);
    }

    /** One row through gemv_rows_activated (the activation applied as each row is written); otherwise linear, then activation. */
    @Override
    public void linearActivation(Activation fn, Tensor x, Tensor weight, Tensor bias, Tensor out) {
        if (weight instanceof Int4CudaWeight) {
            linear(x, weight, bias, out);
            activation(fn, out, out);
            return;
        }
        CudaTensor input = cuda(x, "linearActivation", "x");
        CudaTensor w = cuda(weight, "linearActivation", "weight");
        CudaTensor b = bias == null ? null : cuda(bias, "linearActivation", "bias");
        CudaTensor output = cuda(out, "linearActivation", "out");
        if (!gemvFits(input, w)) {
            linear(x, weight, bias, out);
            activation(fn, out, out);
            return;
        }
        checkProduct("linearActivation", input, w, b, output);
        int in = w.cols(), outFeatures = w.rows();
        if (outFeatures == 0) return;
        context.makeCurrent();
        int split = gemvSplit(in, gemvShortestPart);
        if (kernels.wantsLabels()) kernels.labelNext("gemv_rows N=" + outFeatures + " K=" + in + " + " + fn);
        kernels.launch(Kernel.GEMV_ROWS_ACTIVATED, gemvBlocks(outFeatures, split), 32 * GEMV_WARPS,
                w, b, typeCode(b), input, output, activationCode(fn), outFeatures, in, split, gemvPrefetchBytes);
    }

    private void addBias(CudaTensor output, CudaTensor bias) {
        if (bias == null) return;
        long n = output.elementCount();
        // A thread a 16-byte piece where rows are whole pieces (add_bias_rows' fast path).
        int blocks = output.cols() % pieceElements == 0 ? pieceBlocks(n) : elementwiseBlocks(n);
        kernels.launch(Kernel.ADD_BIAS_ROWS, blocks, ELEMENTWISE_THREADS,
                output, bias, bias.typeCode(), output.cols(), n);
    }

    /**
     * The weights' rows as one tensor where they are adjacent row views of one buffer (a stacked
     * weight's, or a checkpoint's fused qkv or gate/up) of the activation type and the products
     * over {@code input} are worth running as one (2 to STACKED_PRODUCTS_MAX_TOKENS rows, outputs
     * of whole 16-byte pieces); else null.
     */
    private CudaTensor stackedView(CudaTensor input, CudaTensor[] weights, CudaTensor[] outs) {
        int tokens = input.rows();
        if (tokens < 2 || tokens > STACKED_PRODUCTS_MAX_TOKENS || activationType == DType.F32) return null;
        CudaTensor first = weights[0];
        long end = first.address();
        int rows = 0;
        for (int i = 0; i < weights.length; i++) {
            CudaTensor w = weights[i];
            if (w.buffer() != first.buffer() || w.address() != end || w.cols() != first.cols()
                    || w.dtype() != activationType || w.rows() % pieceElements != 0 || outs[i].address() % 16 != 0) {
                return null;
            }
            end += w.byteSize();
            rows += w.rows();
        }
        if (input.dtype() != activationType || first.address() % 16 != 0) return null;
        return new CudaTensor(first.buffer(), first.offset(), activationType, rows, first.cols(), first.name());
    }

    /** input · stackedᵀ ([tokens, stacked rows]) by one cuBLAS call, into a kept buffer. */
    private CudaTensor stackedProduct(CudaTensor input, CudaTensor stacked) {
        int tokens = input.rows(), width = stacked.rows();
        CudaTensor product = stackedProductBuffer(tokens, width);
        context.makeCurrent();
        gemm(input, stacked, product, tokens, input.cols(), width, null);
        return product;
    }

    /** input · stackedᵀ for a stacked 4-bit weight, into the same kept buffer as {@link #stackedProduct}. */
    private CudaTensor int4StackedProduct(CudaTensor input, Int4CudaWeight stacked) {
        CudaTensor product = stackedProductBuffer(input.rows(), stacked.rows());
        int4Linear(input, stacked, null, product);
        return product;
    }

    /** A [tokens, width] product in the kept buffer of stacked products. */
    private CudaTensor stackedProductBuffer(int tokens, int width) {
        DeviceBuffer buffer = stackedProducts.atLeast((long) tokens * width * activationType.byteSize());
        return new CudaTensor(buffer, 0, activationType, tokens, width, "stacked product");
    }

    /** out = fn(gate) × up from a [tokens, 2 × width] product of a stacked [gate; up] (gated_halves). */
    private void gatedHalves(Activation fn, CudaTensor product, int tokens, int width, CudaTensor output) {
        kernels.launch(Kernel.GATED_HALVES, elementwiseBlocks((long) tokens * width / pieceElements), ELEMENTWISE_THREADS,
                activationCode(fn), product, (long) tokens, width, output);
    }

    /** One gemv_rows3 launch for up to three one-row products of x; otherwise each product on its own. */
    @Override
    public void linears(Tensor x, Tensor[] weights, Tensor[] biases, Tensor[] outs) {
        CudaTensor input = cuda(x, "linears", "x");
        KernelShapes.checkLinears(weights, biases, outs);
        if (Arrays.stream(weights).anyMatch(Int4CudaWeight.class::isInstance)) {
            int4Linears(input, weights, biases, outs);
            return;
        }
        requireActivation("linears", "x", input);
        int count = weights.length >= 1 && weights.length <= 3 ? weights.length : 0;
        CudaTensor[] w = new CudaTensor[3], b = new CudaTensor[3], o = new CudaTensor[3];
        boolean oneRow = count > 0;
        for (int i = 0; i < count; i++) {
            w[i] = cuda(weights[i], "linears", "weight");
            b[i] = biases[i] == null ? null : cuda(biases[i], "linears", "bias");
            o[i] = cuda(outs[i], "linears", "out");
            checkProduct("linears", input, w[i], b[i], o[i]);
            oneRow &= gemvFits(input, w[i]);
        }
        if (!oneRow) {
            if (count >= 2 && stackedLinears(input, Arrays.copyOf(w, count), Arrays.copyOf(b, count),
                    Arrays.copyOf(o, count))) {
                return;
            }
            for (int i = 0; i < weights.length; i++) linear(x, weights[i], biases[i], outs[i]);
            return;
        }
        context.makeCurrent();
        int rows = 0;
        for (CudaTensor weight : w) rows += weight == null ? 0 : weight.rows();
        int split = gemvSplit(input.cols(), gemvShortestPart);
        kernels.launch(Kernel.GEMV_ROWS3, gemvBlocks(rows, split), 32 * GEMV_WARPS,
                w[0], w[1], w[2], b[0], b[1], b[2], typeCode(b[0]), typeCode(b[1]), typeCode(b[2]), o[0], o[1], o[2],
                rowCount(w[0]), rowCount(w[1]), rowCount(w[2]), input, input.cols(), split, gemvPrefetchBytes);
    }

    /**
     * One cuBLAS call over a stacked weight's row views (checked by {@link #linears}), then
     * split_columns; false (nothing done) where they are not such views.
     */
    private boolean stackedLinears(CudaTensor input, CudaTensor[] w, CudaTensor[] b, CudaTensor[] o) {
        CudaTensor stacked = stackedView(input, w, o);
        if (stacked == null) return false;
        int tokens = input.rows();
        CudaTensor product = stackedProduct(input, stacked);
        splitColumns(product, tokens, o, Arrays.stream(w).mapToInt(CudaTensor::rows).toArray());
        for (int i = 0; i < w.length; i++) addBias(o[i], b[i]);
        return true;
    }

    /** A [tokens, Σ widths] product's columns into two or three outputs, in order. */
    private void splitColumns(CudaTensor product, int tokens, CudaTensor[] o, int[] widths) {
        kernels.launch(Kernel.SPLIT_COLUMNS, elementwiseBlocks((long) tokens * product.cols() / pieceElements), ELEMENTWISE_THREADS,
                product, (long) tokens, o[0], widths[0], o[1], widths[1], o.length > 2 ? o[2] : null,
                o.length > 2 ? widths[2] : 0);
    }

    // ---- 4-bit weights (quantized.cu) -----------------------------------------------------------

    /** out = input · wᵀ (+ bias). */
    private void int4Linear(CudaTensor input, Int4CudaWeight w, CudaTensor bias, CudaTensor output) {
        requireActivation("linear", "x", input);
        checkProduct("linear", input, w, bias, output);
        int tokens = input.rows(), in = w.cols(), outFeatures = w.rows();
        if (tokens == 0 || outFeatures == 0) return;
        context.makeCurrent();
        if (int4OnTensorCores(tokens)) {
            int4Product(input, w, -1, new CudaTensor[]{output}, new int[]{outFeatures}, bias);
            return;
        }
        CudaTensor dense = dequantized(w, int4Dense.atLeast((long) outFeatures * in * activationType.byteSize()));
        if (!gemm(input, dense, output, tokens, in, outFeatures, bias)) addBias(output, bias);
    }

    /**
     * Whether the gemm_int4 kernels take a product of this many rows of x (else the weight is
     * dequantized for cuBLAS): 16-bit activations, and a device that gives their blocks the shared
     * memory they ask for.
     */
    private boolean int4OnTensorCores(int tokens) {
        if (activationType == DType.F32 || tokens > INT4_MMA_MAX_TOKENS) return false;
        if (int4KernelsSupported == null) int4KernelsSupported = INT4_KERNELS.stream().allMatch(kernels::supports);
        return int4KernelsSupported;
    }

    /** The gemm_int4 kernel for a launch of {@code count} rows of x (at most 16), gated or not. */
    private static Kernel int4Kernel(int count, boolean gated) {
        if (count <= 2) return gated ? Kernel.GEMM_INT4_GATED_2 : Kernel.GEMM_INT4_2;
        if (count <= 8) return gated ? Kernel.GEMM_INT4_GATED_8 : Kernel.GEMM_INT4_8;
        return gated ? Kernel.GEMM_INT4_GATED_16 : Kernel.GEMM_INT4_16;
    }

    /**
     * The gemm_int4 kernels over input, one launch of gemm_int4_N below INT4_WIDE_TOKENS rows, else
     * gemm_int4_wide: w's rows into outs (widths[i] rows each, in order), or with {@code fn >= 0} w as
     * a stacked [gate; up] whose gated product goes to outs[0]; bias only with one output.
     */
    private void int4Product(CudaTensor input, Int4CudaWeight w, int fn, CudaTensor[] outs, int[] widths, CudaTensor bias) {
        int tokens = input.rows(), in = w.cols();
        CudaTensor x = w.order() == null ? input : permuted(input, w.order());
        if (tokens >= INT4_WIDE_TOKENS) {
            int4WideProduct(x, w, fn, outs, widths, bias);
            return;
        }
        int tiles = (fn >= 0 ? w.rows() / 2 : w.rows()) / Int4Weight.TILE_ROWS;
        Kernel kernel = int4Kernel(tokens, fn >= 0);
        CudaTensor[] o = new CudaTensor[3];
        System.arraycopy(outs, 0, o, 0, outs.length);
        if (kernels.wantsLabels()) kernels.labelNext(kernel.function + " T=" + tokens + " N=" + w.rows() + " K=" + in);
        kernels.launch(kernel, tiles, kernel.blockThreads, w.words(), w.params(), x, tokens, in, w.groupSize(), o[0], o[1], o[2],
                widths[0], widths.length > 1 ? widths[1] : 0, widths.length > 2 ? widths[2] : 0, bias, typeCode(bias), fn);
    }

    /**
     * int4Product by the gemm_int4_wide kernels, in launches of up to 64 rows of x. Where the blocks
     * over the rows would leave multiprocessors idle, k is cut into slices (at least 4 k tiles each,
     * as many as keep the blocks within the waves aimed at) whose float32 sums gemm_int4_reduce adds
     * into the outputs.
     */
    private void int4WideProduct(CudaTensor x, Int4CudaWeight w, int fn, CudaTensor[] outs, int[] widths, CudaTensor bias) {
        int tokens = x.rows(), in = w.cols(), rows = w.rows();
        boolean gated = fn >= 0;
        int tiles = rows / Int4Weight.TILE_ROWS;
        int rowBlocks = gated ? Math.ceilDiv(tiles / 2, INT4_WIDE_GATED_BLOCK_TILES) : Math.ceilDiv(tiles, INT4_WIDE_BLOCK_TILES);
        for (int start = 0; start < tokens; start += INT4_WIDE_TOKENS_A_LAUNCH) {
            int count = Math.min(INT4_WIDE_TOKENS_A_LAUNCH, tokens - start);
            // Rounded down: a slice more than the blocks that run at once would leave a second wave.
            int slices = Math.clamp((long) (int4WideWaves(count) * context.multiprocessors / rowBlocks), 1, Math.max(1, in / 64 / 4));
            Kernel kernel = count <= 16 ? (gated ? Kernel.GEMM_INT4_WIDE_GATED_16 : Kernel.GEMM_INT4_WIDE_16)
                    : count <= 32 ? (gated ? Kernel.GEMM_INT4_WIDE_GATED_32 : Kernel.GEMM_INT4_WIDE_32)
                    : gated ? Kernel.GEMM_INT4_WIDE_GATED_64 : Kernel.GEMM_INT4_WIDE_64;
            CudaTensor[] o = new CudaTensor[3];
            for (int i = 0; i < outs.length; i++) o[i] = (CudaTensor) outs[i].rows(start, count);
            CudaTensor partials = slices == 1 ? null
                    : new CudaTensor(int4Partials.atLeast((long) slices * count * rows * Float.BYTES), 0, DType.F32, slices * count, rows,
                            "4-bit product's partial sums");
            int n1 = widths.length > 1 ? widths[1] : 0, n2 = widths.length > 2 ? widths[2] : 0;
            if (kernels.wantsLabels()) kernels.labelNext(kernel.function + " T=" + count + " N=" + rows + " K=" + in + " S=" + slices);
            kernels.launchGrid(kernel, rowBlocks, slices, kernel.blockThreads, w.words(), w.params(), (CudaTensor) x.rows(start, count),
                    count, in, w.groupSize(), partials, o[0], o[1], o[2], widths[0], n1, n2, bias, typeCode(bias), fn);
            if (partials != null) {
                int outRows = gated ? widths[0] : widths[0] + n1 + n2;
                kernels.launch(Kernel.GEMM_INT4_REDUCE, elementwiseBlocks((long) count * outRows), ELEMENTWISE_THREADS,
                        partials, slices, count, o[0], o[1], o[2], widths[0], n1, n2, bias, typeCode(bias), fn);
            }
        }
    }

    /** The rows of x with their columns in a 4-bit weight's packed input order, in a kept buffer. */
    private CudaTensor permuted(CudaTensor x, CudaTensor order) {
        long n = x.elementCount();
        CudaTensor out = new CudaTensor(int4Permuted.atLeast(n * activationType.byteSize()), 0, activationType, x.rows(), x.cols(),
                "x in packed input order");
        kernels.launch(Kernel.PERMUTE_COLUMNS, elementwiseBlocks(n), ELEMENTWISE_THREADS, x, order, out, x.rows(), x.cols());
        return out;
    }

    /** w as a [rows, cols] matrix of the activation type, written into {@code target}. */
    private CudaTensor dequantized(Int4CudaWeight w, DeviceBuffer target) {
        CudaTensor dense = new CudaTensor(target, 0, activationType, w.rows(), w.cols(), w.name() + " dequantized");
        long pieces = (long) w.rows() * w.cols() / 32;
        kernels.launch(Kernel.DEQUANTIZE_INT4, elementwiseBlocks(pieces), ELEMENTWISE_THREADS,
                w.words(), w.params(), w.order(), dense, w.rows(), w.cols(), w.groupSize());
        return dense;
    }

    /** A persistent dequantized copy of a 4-bit weight, for the kernels that read only weights of the activation type. */
    private CudaTensor dense(Tensor weight, String kernel, String role) {
        if (!(weight instanceof Int4CudaWeight packed)) return cuda(weight, kernel, role);
        return denseInt4Copies.computeIfAbsent(packed, w -> {
            context.makeCurrent();
            return dequantized(w, memory.allocate((long) w.rows() * w.cols() * activationType.byteSize(), DeviceMemory.Kind.PERSISTENT));
        });
    }

    /**
     * Products of one input by 4-bit weights: where they are consecutive row views of one stacked
     * weight, one product (the gemm_int4 kernels writing each output, or cuBLAS over the weight
     * dequantized and split_columns); otherwise each on its own.
     */
    private void int4Linears(CudaTensor input, Tensor[] weights, Tensor[] biases, Tensor[] outs) {
        Int4CudaWeight stacked = stackedInt4(input, weights, outs);
        if (stacked == null) {
            for (int i = 0; i < weights.length; i++) linear(input, weights[i], biases[i], outs[i]);
            return;
        }
        int tokens = input.rows();
        CudaTensor[] o = new CudaTensor[weights.length];
        int[] widths = new int[weights.length];
        for (int i = 0; i < weights.length; i++) {
            o[i] = cuda(outs[i], "linears", "out");
            widths[i] = weights[i].rows();
            checkProduct("linears", input, weights[i], biases[i], o[i]);
        }
        context.makeCurrent();
        if (int4OnTensorCores(tokens)) {
            int4Product(input, stacked, -1, o, widths, null);
        } else {
            splitColumns(int4StackedProduct(input, stacked), tokens, o, widths);
        }
        for (int i = 0; i < weights.length; i++) addBias(o[i], biases[i] == null ? null : cuda(biases[i], "linears", "bias"));
    }

    /** The 4-bit weights as one, where there are two or three consecutive row views of one, with outputs of the activation type; else null. */
    private Int4CudaWeight stackedInt4(CudaTensor input, Tensor[] weights, Tensor[] outs) {
        if (weights.length < 2 || weights.length > 3 || input.rows() == 0) return null;
        int rows = 0;
        for (int i = 0; i < weights.length; i++) {
            if (!(weights[i] instanceof Int4CudaWeight w) || (i > 0 && !w.follows((Int4CudaWeight) weights[i - 1]))
                    || w.rows() % pieceElements != 0 || !(outs[i] instanceof CudaTensor o) || o.address() % 16 != 0
                    || o.dtype() != activationType) {
                return null;
            }
            rows += w.rows();
        }
        Int4CudaWeight first = (Int4CudaWeight) weights[0];
        CudaTensor words = first.words(), params = first.params();
        return new Int4CudaWeight(new CudaTensor(words.buffer(), words.offset(), DType.I32, rows / Int4Weight.TILE_ROWS, words.cols(),
                first.name()),
                new CudaTensor(params.buffer(), params.offset(), DType.F32, rows / Int4Weight.TILE_ROWS, params.cols(), first.name()),
                first.order(), first.groupSize(), activationType, first.name());
    }

    /**
     * A gated MLP's first half by 4-bit weights: over a stacked [gate; up] one gated launch (or cuBLAS
     * over the weight dequantized and gated_halves); otherwise the default composition.
     */
    private void int4GatedLinear(Activation fn, CudaTensor input, Tensor gate, Tensor up, Tensor upScratch, CudaTensor output) {
        Int4CudaWeight stacked = gate.rows() == up.rows() ? stackedInt4(input, new Tensor[]{gate, up}, new Tensor[]{output, output}) : null;
        if (stacked == null) {
            Backend.super.gatedLinear(fn, input, gate, up, upScratch, output);
            return;
        }
        requireActivation("gatedLinear", "x", input);
        checkProduct("gatedLinear", input, gate, null, output);
        int tokens = input.rows();
        if (tokens == 0) return;
        context.makeCurrent();
        if (int4OnTensorCores(tokens)) {
            int4Product(input, stacked, activationCode(fn), new CudaTensor[]{output}, new int[]{gate.rows()}, null);
            return;
        }
        gatedHalves(fn, int4StackedProduct(input, stacked), tokens, gate.rows(), output);
    }

    /**
     * One gemv_gated launch for a one-row input; over a stacked [gate; up] weight's row views one
     * cuBLAS call and gated_halves; otherwise the default composition.
     */
    @Override
    public void gatedLinear(Activation fn, Tensor x, Tensor gate, Tensor up, Tensor upScratch, Tensor out) {
        if (gate instanceof Int4CudaWeight || up instanceof Int4CudaWeight) {
            int4GatedLinear(fn, cuda(x, "gatedLinear", "x"), gate, up, upScratch, cuda(out, "gatedLinear", "out"));
            return;
        }
        CudaTensor input = cuda(x, "gatedLinear", "x");
        CudaTensor g = cuda(gate, "gatedLinear", "gate");
        CudaTensor u = cuda(up, "gatedLinear", "up");
        CudaTensor output = cuda(out, "gatedLinear", "out");
        boolean oneRow = gemvFits(input, g) && gemvFits(input, u) && g.rows() == u.rows();
        CudaTensor stacked = oneRow || g.rows() != u.rows() ? null
                : stackedView(input, new CudaTensor[]{g, u}, new CudaTensor[]{output, output});
        if (!oneRow && stacked == null) {
            Backend.super.gatedLinear(fn, x, gate, up, upScratch, out);
            return;
        }
        requireActivation("gatedLinear", "x", input);
        checkProduct("gatedLinear", input, g, null, output);
        KernelShapes.checkLinear(input, u, null, output);
        if (stacked != null) {
            gatedHalves(fn, stackedProduct(input, stacked), input.rows(), g.rows(), output);
            return;
        }
        context.makeCurrent();
        int split = gemvSplit(input.cols(), gemvShortestPart);
        kernels.launch(Kernel.GEMV_GATED, gemvBlocks(g.rows(), split), 32 * GEMV_WARPS,
                g, u, input, output, activationCode(fn), g.rows(), input.cols(), split, gemvPrefetchBytes);
    }

    /** Whether gemv_rows-style kernels take this product: one row, a checkpoint weight of the activation type, aligned. */
    private boolean gemvFits(CudaTensor input, CudaTensor w) {
        return input.rows() == 1 && w.cols() == input.cols() && w.cols() <= GEMV_LONGEST_ROW
                && activationType != DType.F32 && w.dtype() == activationType && input.dtype() == activationType
                && w.cols() % 8 == 0 && w.address() % 16 == 0 && input.address() % 16 == 0;
    }

    /** The fewest weights of a row a gemv warp takes on a card of this peak memory bandwidth (bytes/s). */
    static int gemvShortestPart(double peakMemoryBandwidth) {
        return peakMemoryBandwidth >= GEMV_HALVES_FROM_BANDWIDTH ? 2048 : 1024;
    }

    /**
     * Warps sharing each weight row in the gemv kernels (linear.cu): halved rows while each part
     * keeps at least shortestPart weights and a whole number of 16-byte pieces, up to a block's
     * GEMV_WARPS. Measured on an H100 (Llama-3-8B, ncu, eager, one warp a row before): o 17.9 -> 16.6
     * µs, qkv 23.0 -> 22.1, gate/up 80.9 -> 79.2 in halves; the 14336-wide down projection, slower
     * than cuBLAS with a warp a row, matches it (45.4 µs) split over four. Under programmatic
     * launches quarters of the 4096-wide rows are faster still on an H100 (GEMV_SHORTEST_PART_SET).
     */
    static int gemvSplit(int width, int shortestPart) {
        int split = 1;
        while (split < GEMV_WARPS && width / (2 * split) >= shortestPart && width % (16 * split) == 0) {
            split *= 2;
        }
        return split;
    }

    private static int gemvBlocks(int rows, int split) {
        int rowsPerBlock = GEMV_WARPS / split;
        return (rows + rowsPerBlock - 1) / rowsPerBlock;
    }

    private static int typeCode(CudaTensor t) {
        return t == null ? 0 : t.typeCode();
    }

    private static int rowCount(CudaTensor t) {
        return t == null ? 0 : t.rows();
    }

    /**
     * While a pass is recorded: holds the product's buffers and notes the product by its shape and
     * operands (compared on a replay); returns whether to run it (false on a replay).
     */
    private boolean recordProduct(DeviceBuffer[] buffers, long... operands) {
        for (DeviceBuffer buffer : buffers) recording.hold(buffer);
        return recording.product(operands);
    }

    /**
     * out = input · wᵀ through cuBLASLt's tuned algorithm (up to CUBLAS_LT_MAX_TOKENS rows) or
     * cublasGemmEx; with {@code bias} (null: none) the tuned product may add it too (its epilogue):
     * true where it did, so that no add_bias_rows follows.
     */
    private boolean gemm(CudaTensor input, CudaTensor w, CudaTensor output, int tokens, int in, int outFeatures,
                         CudaTensor bias) {
        // The search assumes the bias as aligned as an allocation (cuBLASLt reads no bias pointer then), so a
        // bias at another offset (a row view of a packed bias) keeps add_bias_rows.
        CudaTensor epilogueBias = tunedProducts != null && tokens <= CUBLAS_LT_MAX_TOKENS && LT_BIAS_EPILOGUE && bias != null
                && bias.dtype() == activationType && bias.elementCount() == outFeatures
                && bias.address() % TunedProducts.MAX_ALIGNMENT == 0 ? bias : null;
        long biasAddress = epilogueBias == null ? 0 : epilogueBias.address();
        // Searched before anything is recorded or timed, so that a search's runs are not counted as the product's.
        // A replay only looks its plan up: it must not search, nor give up a capture.
        TunedProducts.Plan plan = tunedProducts == null || tokens > CUBLAS_LT_MAX_TOKENS ? null
                : recording != null && recording.replaying()
                ? tunedProducts.searchedPlan(tokens, in, outFeatures, w.address(), input.address(), output.address(), biasAddress)
                : tunedProducts.plan(tokens, in, outFeatures, w.address(), input.address(), output.address(), biasAddress,
                recording != null, () -> defaultGemm(input, w, output, tokens, in, outFeatures));
        boolean biased = plan != null && epilogueBias != null;
        if (recording != null) {
            DeviceBuffer[] held = biased ? new DeviceBuffer[]{input.buffer(), w.buffer(), output.buffer(), epilogueBias.buffer()}
                    : new DeviceBuffer[]{input.buffer(), w.buffer(), output.buffer()};
            if (!recordProduct(held, tokens, in, outFeatures, w.address(), input.address(), output.address(),
                    biased ? biasAddress : 0)) {
                return biased;
            }
        }
        KernelTimes.Timer timing = kernels.eagerTimer();
        if (timing != null) {
            timing.begin((plan != null ? "cublasLt gemm T=" : "cublas gemm T=") + tokens + " N=" + outFeatures + " K=" + in
                    + (biased ? " + bias" : ""));
        }
        if (plan != null) {
            tunedProducts.multiply(plan, w.address(), input.address(), output.address(), biased ? biasAddress : 0);
        } else {
            defaultGemm(input, w, output, tokens, in, outFeatures);
        }
        if (timing != null) timing.end();
        return biased;
    }

    /** The product through cublasGemmEx and its default algorithm. */
    private void defaultGemm(CudaTensor input, CudaTensor w, CudaTensor output, int tokens, int in, int outFeatures) {
        int type = cudaDataType(activationType);
        // Row-major out[T, N] = x[T, K] · W[N, K]ᵀ is column-major outᵀ[N, T] = W[K, N]ᵀ · xᵀ[K, T].
        cublas.gemm(cublasHandle, Cublas.OP_T, Cublas.OP_N, outFeatures, tokens, in, one,
                w.address(), type, in, input.address(), type, in,
                zero, output.address(), type, outFeatures, Cublas.COMPUTE_32F);
    }

    /** The tuned cuBLASLt products, or null where they are off. */
    TunedProducts tunedProducts() {
        return tunedProducts;
    }

    static int cudaDataType(DType type) {
        return switch (type) {
            case F32 -> Cublas.R_32F;
            case F16 -> Cublas.R_16F;
            case BF16 -> Cublas.R_16BF;
            default -> throw new IllegalArgumentException("cuBLAS takes no " + type + " operands here");
        };
    }

    @Override
    public void rmsNorm(Tensor x, Tensor weight, float eps, float weightOffset, Tensor out) {
        CudaTensor input = cuda(x, "rmsNorm", "x");
        CudaTensor scale = cuda(weight, "rmsNorm", "weight");
        CudaTensor output = cuda(out, "rmsNorm", "out");
        checkRowwise("rmsNorm", input, scale, null, output);
        context.makeCurrent();
        kernels.launch(Kernel.RMS_NORM, input.rows(), normThreads(input.cols()),
                input, scale, scale.typeCode(), eps, weightOffset, output, input.cols());
    }

    @Override
    public void addRmsNorm(Tensor x, Tensor delta, Tensor weight, float eps, float weightOffset, Tensor out) {
        CudaTensor input = cuda(x, "addRmsNorm", "x");
        CudaTensor added = cuda(delta, "addRmsNorm", "delta");
        CudaTensor scale = cuda(weight, "addRmsNorm", "weight");
        CudaTensor output = cuda(out, "addRmsNorm", "out");
        checkElementwise("addRmsNorm", input, added, input);
        checkRowwise("addRmsNorm", input, scale, null, output);
        if (output.overlaps(input) || output.overlaps(added)) {
            throw new IllegalArgumentException("addRmsNorm: out " + output + " overlaps x or delta");
        }
        context.makeCurrent();
        kernels.launch(Kernel.ADD_RMS_NORM, input.rows(), normThreads(input.cols()),
                input, added, scale, scale.typeCode(), eps, weightOffset, output, input.cols());
    }

    /**
     * Sets whether {@link #projectedRotaryAttention} reads q, k and v from their stacked product's
     * columns and how many slices of K {@link #linearAddRmsNorm} splits deep products into (1:
     * none), whatever the system properties say: for tests of each path.
     */
    void useDecodeFusions(boolean stridedQkv, int productSlices) {
        stridedDecodeQkv = stridedQkv;
        splitProductSlices = productSlices;
    }

    /** Back to what the system properties (or their defaults) say. */
    void resetDecodeFusions() {
        useDecodeFusions(STRIDED_DECODE_QKV, SPLIT_PRODUCT_SLICES);
    }

    /**
     * For 2 to SPLIT_PRODUCT_MAX_TOKENS rows of a deep product (a Llama-3-8B down projection's
     * 14336), the product as SPLIT_PRODUCT_SLICES strided-batched products over slices of K into
     * 16-bit partials, which add_parts_rms_norm sums with the residual add and the norm: cuBLAS's
     * 64-row products use too few of the SMs for their depth (on an H200 the down projection took
     * 35.1 µs whole and 30.7 µs in four slices, 32.7 with a separate sum kernel). {@code product}
     * is then not written. Otherwise linear, then addRmsNorm.
     */
    @Override
    public void linearAddRmsNorm(Tensor input, Tensor weight, Tensor product, Tensor residual, Tensor normWeight,
                                 float eps, float weightOffset, Tensor out) {
        if (weight instanceof Int4CudaWeight) {
            Backend.super.linearAddRmsNorm(input, weight, product, residual, normWeight, eps, weightOffset, out);
            return;
        }
        CudaTensor x = cuda(input, "linearAddRmsNorm", "input");
        CudaTensor w = cuda(weight, "linearAddRmsNorm", "weight");
        CudaTensor scratch = cuda(product, "linearAddRmsNorm", "product");
        CudaTensor stream = cuda(residual, "linearAddRmsNorm", "residual");
        CudaTensor scale = cuda(normWeight, "linearAddRmsNorm", "normWeight");
        CudaTensor output = cuda(out, "linearAddRmsNorm", "out");
        int tokens = x.rows(), depth = x.cols(), width = w.rows(), slices = splitProductSlices;
        boolean split = slices > 1 && tokens >= 2 && tokens <= SPLIT_PRODUCT_MAX_TOKENS && depth >= SPLIT_PRODUCT_MIN_DEPTH
                && depth % (8 * slices) == 0 && activationType != DType.F32 && w.dtype() == activationType
                && x.dtype() == activationType && w.cols() == depth && width % pieceElements == 0 && width <= pieceElements * 1024
                && stream.rows() == tokens && stream.cols() == width && stream.address() % 16 == 0
                && output.address() % 16 == 0 && x.address() % 16 == 0 && w.address() % 16 == 0;
        if (!split) {
            Backend.super.linearAddRmsNorm(input, weight, product, residual, normWeight, eps, weightOffset, out);
            return;
        }
        KernelShapes.checkLinear(x, w, null, scratch);
        checkRowwise("linearAddRmsNorm", stream, scale, null, output);
        if (output.overlaps(stream) || output.overlaps(x) || stream.overlaps(x)) {
            throw new IllegalArgumentException("linearAddRmsNorm: out " + output + ", residual " + stream + " and input "
                    + x + " must not overlap");
        }
        long sliceElements = (long) tokens * width;
        DeviceBuffer parts = splitProductParts.atLeast(slices * sliceElements * activationType.byteSize());
        context.makeCurrent();
        // On a replay the product is only compared, and the norm's launch still follows, as captured.
        if (recording == null || recordProduct(new DeviceBuffer[]{x.buffer(), w.buffer(), parts},
                tokens, depth, width, slices, w.address(), x.address(), parts.address())) {
            KernelTimes.Timer timing = kernels.eagerTimer();
            if (timing != null) timing.begin("cublas split gemm T=" + tokens + " N=" + width + " K=" + depth + " x" + slices);
            int type = cudaDataType(activationType), slice = depth / slices;
            // Row-major part p [T, N] = x[:, p·slice ..] · W[:, p·slice ..]ᵀ, column-major as in gemm.
            cublas.gemmStridedBatched(cublasHandle, Cublas.OP_T, Cublas.OP_N, width, tokens, slice, one,
                    w.address(), type, depth, slice, x.address(), type, depth, slice, zero,
                    parts.address(), type, width, sliceElements, slices, Cublas.COMPUTE_32F);
            if (timing != null) timing.end();
        }
        CudaTensor partials = new CudaTensor(parts, 0, activationType, tokens, width, "split product parts");
        kernels.launch(Kernel.ADD_PARTS_RMS_NORM, tokens, normThreads(width),
                stream, partials, slices, sliceElements, scale, scale.typeCode(), eps, weightOffset, output, width);
    }

    @Override
    public void layerNorm(Tensor x, Tensor weight, Tensor bias, float eps, Tensor out) {
        CudaTensor input = cuda(x, "layerNorm", "x");
        CudaTensor scale = cuda(weight, "layerNorm", "weight");
        CudaTensor shift = bias == null ? null : cuda(bias, "layerNorm", "bias");
        CudaTensor output = cuda(out, "layerNorm", "out");
        checkRowwise("layerNorm", input, scale, shift, output);
        context.makeCurrent();
        kernels.launch(Kernel.LAYER_NORM, input.rows(), layerNormThreads(input.cols()),
                input, scale, scale.typeCode(), shift, shift == null ? 0 : shift.typeCode(), eps, output, input.cols());
    }

    @Override
    public void addLayerNorm(Tensor x, Tensor delta, Tensor weight, Tensor bias, float eps, Tensor out) {
        CudaTensor input = cuda(x, "addLayerNorm", "x");
        CudaTensor added = cuda(delta, "addLayerNorm", "delta");
        CudaTensor scale = cuda(weight, "addLayerNorm", "weight");
        CudaTensor shift = bias == null ? null : cuda(bias, "addLayerNorm", "bias");
        CudaTensor output = cuda(out, "addLayerNorm", "out");
        checkElementwise("addLayerNorm", input, added, input);
        checkRowwise("addLayerNorm", input, scale, shift, output);
        if (output.overlaps(input) || input.overlaps(added)
                || output.overlaps(added) && !(output.address() == added.address() && output.dtype() == added.dtype())) {
            throw new IllegalArgumentException("addLayerNorm: out " + output + " overlaps x, or delta other than as the same rows");
        }
        context.makeCurrent();
        kernels.launch(Kernel.ADD_LAYER_NORM, input.rows(), layerNormThreads(input.cols()),
                input, added, scale, scale.typeCode(), shift, shift == null ? 0 : shift.typeCode(), eps, output, input.cols());
    }

    /** A thread a 16-byte piece where a row is whole pieces and at most 1024 of them (layer_norm's fast path). */
    private int layerNormThreads(int cols) {
        return cols % pieceElements == 0 && cols / pieceElements <= 1024 ? rowThreads(cols / pieceElements) : rowThreads(cols);
    }

    @Override
    public void add(Tensor a, Tensor b, Tensor out) {
        CudaTensor left = cuda(a, "add", "a");
        CudaTensor right = cuda(b, "add", "b");
        CudaTensor output = cuda(out, "add", "out");
        checkElementwise("add", left, right, output);
        byPieces(Kernel.ADD, output, left, right, output, output.elementCount());
    }

    @Override
    public void siluMul(Tensor gate, Tensor up, Tensor out) {
        gated("siluMul", Activation.SILU, gate, up, out);
    }

    @Override
    public void activation(Activation fn, Tensor x, Tensor out) {
        CudaTensor input = cuda(x, "activation", "x");
        CudaTensor output = cuda(out, "activation", "out");
        checkElementwise("activation", input, input, output);
        byPieces(Kernel.ACTIVATION, output, activationCode(fn), input, output, output.elementCount());
    }

    @Override
    public void gatedActivation(Activation fn, Tensor gate, Tensor up, Tensor out) {
        gated("gatedActivation", fn, gate, up, out);
    }

    /** out = fn(gate) * up elementwise (gated_activation), checked and named as {@code kernel}. */
    private void gated(String kernel, Activation fn, Tensor gate, Tensor up, Tensor out) {
        CudaTensor g = cuda(gate, kernel, "gate");
        CudaTensor u = cuda(up, kernel, "up");
        CudaTensor output = cuda(out, kernel, "out");
        checkElementwise(kernel, g, u, output);
        byPieces(Kernel.GATED_ACTIVATION, output, activationCode(fn), g, u, output, output.elementCount());
    }

    @Override
    public void scale(Tensor x, float factor, Tensor out) {
        unaryWithParameter("scale", Kernel.SCALE, x, factor, out);
    }

    @Override
    public void clamp(Tensor x, float limit, Tensor out) {
        unaryWithParameter("clamp", Kernel.CLAMP, x, limit, out);
    }

    @Override
    public void softcap(Tensor x, float cap, Tensor out) {
        unaryWithParameter("softcap", Kernel.SOFTCAP, x, cap, out);
    }

    /** The kernels of the form {@code kernel(const act_t* x, float parameter, act_t* out, i64 n)}. */
    private void unaryWithParameter(String name, Kernel kernel, Tensor x, float parameter, Tensor out) {
        CudaTensor input = cuda(x, name, "x");
        CudaTensor output = cuda(out, name, "out");
        checkElementwise(name, input, input, output);
        elementwise(kernel, output, input, parameter, output, output.elementCount());
    }

    private void elementwise(Kernel kernel, CudaTensor out, Object... arguments) {
        context.makeCurrent();
        kernels.launch(kernel, elementwiseBlocks(out.elementCount()), ELEMENTWISE_THREADS, arguments);
    }

    /** As {@link #elementwise}, for a kernel that takes a 16-byte piece a thread where it can ({@link #pieceBlocks}). */
    private void byPieces(Kernel kernel, CudaTensor out, Object... arguments) {
        context.makeCurrent();
        kernels.launch(kernel, pieceBlocks(out.elementCount()), ELEMENTWISE_THREADS, arguments);
    }

    /** Function codes shared with the kernels (common.cuh's JV_SILU ...). */
    private static int activationCode(Activation fn) {
        return switch (fn) {
            case SILU -> 0;
            case GELU -> 1;
            case GELU_TANH -> 2;
            case QUICK_GELU -> 3;
            case RELU -> 4;
        };
    }

    @Override
    public void rotary(Tensor x, int heads, int headDim, int rotaryDim, boolean neoxStyle, Tensor cosSin,
                       Tensor positions) {
        CudaTensor input = cuda(x, "rotary", "x");
        CudaTensor table = cuda(cosSin, "rotary", "cosSin");
        CudaTensor pos = cuda(positions, "rotary", "positions");
        requireActivation("rotary", "x", input);
        KernelShapes.checkRotary(input, heads, headDim, rotaryDim, table, pos);
        context.makeCurrent();
        kernels.launch(Kernel.ROTARY, input.rows(), rotaryThreads(heads, headDim, rotaryDim, neoxStyle),
                input, heads, headDim, rotaryDim, neoxStyle ? 1 : 0, table, table.typeCode(), table.rows(), pos,
                errors.buffer());
    }

    @Override
    public void rotaryPair(Tensor q, int qHeads, Tensor k, int kHeads, int headDim, int rotaryDim, boolean neoxStyle,
                           Tensor cosSin, Tensor positions) {
        CudaTensor queries = cuda(q, "rotaryPair", "q");
        CudaTensor keys = cuda(k, "rotaryPair", "k");
        CudaTensor table = cuda(cosSin, "rotaryPair", "cosSin");
        CudaTensor pos = cuda(positions, "rotaryPair", "positions");
        requireActivation("rotaryPair", "q", queries);
        requireActivation("rotaryPair", "k", keys);
        KernelShapes.checkRotary(queries, qHeads, headDim, rotaryDim, table, pos);
        KernelShapes.checkRotary(keys, kHeads, headDim, rotaryDim, table, pos);
        if (queries.overlaps(keys)) {
            throw new IllegalArgumentException("rotaryPair: q " + queries + " overlaps k " + keys);
        }
        context.makeCurrent();
        kernels.launchGrid(Kernel.ROTARY_PAIR, queries.rows(), 2, rotaryThreads(Math.max(qHeads, kHeads), headDim, rotaryDim, neoxStyle),
                queries, qHeads, keys, kHeads, headDim, rotaryDim, neoxStyle ? 1 : 0, table, table.typeCode(),
                table.rows(), pos, errors.buffer());
    }

    /**
     * On a decode step (one token per sequence, all through paged_decode), the rotation and the
     * cache write run inside paged_decode (its DecodeFusion) instead of as rotary_pair and
     * write_kv_cache launches: two fewer small kernels a layer. q and k are then left unrotated.
     * Otherwise rotaryPair, then attention.
     */
    @Override
    public void rotaryAttention(Tensor q, Tensor k, Tensor v, int rotaryDim, boolean neoxStyle, Tensor cosSin,
                                Tensor positions, KvCache cache, int layer, ForwardBatch batch, AttentionParams params,
                                Tensor out) {
        CudaTensor table = cuda(cosSin, "rotaryAttention", "cosSin");
        CudaTensor pos = cuda(positions, "rotaryAttention", "positions");
        if (!fusedDecodeStep(batch, params)) {
            rotaryPair(q, params.numHeads(), k, params.numKvHeads(), params.headDim(), rotaryDim, neoxStyle, cosSin,
                    positions);
            attention(q, k, v, cache, layer, batch, params, out);
            return;
        }
        KernelShapes.checkRotary(cuda(q, "rotaryAttention", "q"), params.numHeads(), params.headDim(), rotaryDim, table, pos);
        KernelShapes.checkRotary(cuda(k, "rotaryAttention", "k"), params.numKvHeads(), params.headDim(), rotaryDim, table, pos);
        attend(q, k, v, cache, layer, batch, params, out, new DecodeRotary(table, rotaryDim, neoxStyle, pos, 0));
    }

    /** Whether paged_decode rotates and caches this step's keys itself: a step of decode tokens only, in 16 bits. */
    private boolean fusedDecodeStep(ForwardBatch batch, AttentionParams params) {
        return FUSED_DECODE_ROTARY && batch.numTokens() > 0 && batch.numTokens() == batch.numSequences()
                && activationType != DType.F32 && pagedDecode(params) != null && !GENERIC_ATTENTION && oneTokenEach(batch);
    }

    /** Whether every sequence of the step has exactly one token (so none is a prompt chunk beside an empty sequence). */
    private static boolean oneTokenEach(ForwardBatch batch) {
        for (int s = 0; s < batch.numSequences(); s++) {
            if (batch.queryLength(s) != 1) return false;
        }
        return true;
    }

    /**
     * On a fused decode step of 2 to STACKED_PRODUCTS_MAX_TOKENS tokens whose q, k and v weights are
     * adjacent rows of one stacked weight, one product into a kept buffer, and paged_decode reads
     * the queries, keys and values from its columns: split_columns' launch and its copy are saved,
     * and {@code qkv} is not written. Otherwise linears, then rotaryAttention.
     */
    @Override
    public void projectedRotaryAttention(Tensor x, Tensor[] weights, Tensor[] qkv, int rotaryDim, boolean neoxStyle,
                                         Tensor cosSin, Tensor positions, KvCache cache, int layer, ForwardBatch batch,
                                         AttentionParams params, Tensor out) {
        CudaTensor input = cuda(x, "projectedRotaryAttention", "x");
        if (stridedDecodeQkv && weights.length == 3 && qkv.length == 3 && fusedDecodeStep(batch, params)
                && Arrays.stream(weights).noneMatch(Int4CudaWeight.class::isInstance)) {
            CudaTensor[] w = new CudaTensor[3], o = new CudaTensor[3];
            for (int i = 0; i < 3; i++) {
                w[i] = cuda(weights[i], "projectedRotaryAttention", "weight");
                o[i] = cuda(qkv[i], "projectedRotaryAttention", "qkv");
                KernelShapes.checkLinear(input, w[i], null, o[i]);
            }
            CudaTensor stacked = stackedView(input, w, o);
            if (stacked != null) {
                CudaTensor table = cuda(cosSin, "projectedRotaryAttention", "cosSin");
                CudaTensor pos = cuda(positions, "projectedRotaryAttention", "positions");
                CudaTensor product = stackedProduct(input, stacked);
                // Views of the product's columns: their rows lie product.cols() elements apart, which
                // only paged_decode is told (DecodeRotary.rowStride); nothing else reads them.
                CudaTensor[] columns = new CudaTensor[3];
                long offset = product.offset();
                for (int i = 0; i < 3; i++) {
                    columns[i] = new CudaTensor(product.buffer(), offset, activationType, input.rows(), w[i].rows(),
                            "qkv product columns");
                    offset += (long) w[i].rows() * activationType.byteSize();
                }
                KernelShapes.checkRotary(columns[0], params.numHeads(), params.headDim(), rotaryDim, table, pos);
                KernelShapes.checkRotary(columns[1], params.numKvHeads(), params.headDim(), rotaryDim, table, pos);
                attend(columns[0], columns[1], columns[2], cache, layer, batch, params, out,
                        new DecodeRotary(table, rotaryDim, neoxStyle, pos, product.cols()));
                return;
            }
        }
        Backend.super.projectedRotaryAttention(x, weights, qkv, rotaryDim, neoxStyle, cosSin, positions, cache, layer,
                batch, params, out);
    }

    /**
     * The rotary embedding that paged_decode applies on a fused decode step; rowStride: elements
     * between a token's rows of q, k and v where they are columns of one product (0: each its own
     * contiguous tensor).
     */
    private record DecodeRotary(CudaTensor cosSin, int rotaryDim, boolean neoxStyle, CudaTensor positions, int rowStride) {
    }

    @Override
    public void attention(Tensor q, Tensor k, Tensor v, KvCache cache, int layer, ForwardBatch batch,
                          AttentionParams params, Tensor out) {
        attend(q, k, v, cache, layer, batch, params, out, null);
    }

    /** attention, with paged_decode also rotating and caching this step's keys where rotary is given. */
    private void attend(Tensor q, Tensor k, Tensor v, KvCache cache, int layer, ForwardBatch batch,
                        AttentionParams params, Tensor out, DecodeRotary rotary) {
        CudaTensor query = cuda(q, "attention", "q");
        CudaTensor key = cuda(k, "attention", "k");
        CudaTensor value = cuda(v, "attention", "v");
        CudaTensor output = cuda(out, "attention", "out");
        if (!(cache instanceof CudaKvCache pages)) {
            throw new IllegalArgumentException("attention: the KV cache " + cache + " was not made by the CUDA backend");
        }
        for (CudaTensor t : new CudaTensor[]{query, key, value, output}) {
            requireActivation("attention", "input", t);
        }
        KvCacheSpec spec = pages.spec();
        KernelShapes.checkAttention(query, key, value, spec, layer, batch, params, output);
        if (params.headDim() > MAX_HEAD_DIM) {
            throw new JvllmException("attention: head dim " + params.headDim() + " is above the "
                    + MAX_HEAD_DIM + " the CUDA attention kernel supports");
        }
        int tokens = batch.numTokens();
        int kvWidth = params.numKvHeads() * params.headDim();
        if (query.overlaps(output)) {
            throw new IllegalArgumentException("attention: out " + output + " overlaps q");
        }
        if (tokens == 0) return;
        BatchOnDevice metadata = batchOnDevice(batch, pages);
        CudaTensor slopes = params.alibiSlopes() == null ? null
                : alibiSlopes.computeIfAbsent(params.alibiSlopes(), s -> (CudaTensor) constant(s, 1, s.length));
        context.makeCurrent();
        Kernel flash = flashPrefill(params.headDim(), query);
        Kernel decode = pagedDecode(params);
        CudaTensor bias = relativeBias(params);
        // A step's prompt tiles take flash_prefill and its single tokens paged_decode, or paged_attention
        // where no paged_decode serves the heads (groups above 8, other head sizes, a relative bias).
        // A relative bias (T5) only paged_decode's _relative kernels add: its steps with prompt tiles, or
        // without such a kernel, take the generic one whole.
        boolean generic = flash == null && (decode == null || metadata.tileCount() > 0)
                || bias != null && (decode == null || metadata.tileCount() > 0)
                || activationType == DType.F32 || GENERIC_ATTENTION;
        // A step of one token a sequence leaves the cache write to paged_decode (as a fused rotary step does):
        // one launch fewer a layer. (Tokens of one sequence at scattered positions are singles too, but a
        // block may then read a key another block of the launch is writing.)
        boolean decodeWrites = rotary != null || !generic && decode != null && metadata.tileCount() == 0 && oneTokenEach(batch);
        if (!decodeWrites) {
            kernels.launch(Kernel.WRITE_KV_CACHE, tokens, rowThreads(kvWidth),
                    key, value, metadata.slots(), params.numKvHeads(), params.headDim(), spec.blockSize(),
                    pages.keys(layer), pages.values(layer));
        }
        if (generic) {
            // The generic kernel serves what the fast ones do not: float32, other head sizes, a relative bias (T5).
            genericAttention(tokens, null, query, output, pages, layer, metadata, params, slopes, bias, rotary);
            return;
        }
        if (flash != null) kernels.launchGrid(flash, metadata.tileCount(), params.numHeads(), FLASH_THREADS,
                query, output, pages.keys(layer), pages.values(layer), metadata.positions(),
                metadata.tokenSequences(), metadata.blockTables(), metadata.blockTableStride(), spec.blockSize(),
                params.numHeads(), params.numKvHeads(), params.scale(), params.slidingWindow(),
                params.logitSoftcap(), slopes, metadata.tiles());
        int singles = metadata.singleCount();
        if (singles == 0) return;
        if (decode == null) {
            genericAttention(singles, metadata.singles(), query, output, pages, layer, metadata, params, slopes, bias, rotary);
            return;
        }
        launchDecode(decode, metadata, pages.keys(layer), pages.values(layer), spec.blockSize(), query, output, params, slopes,
                bias, rotary, decodeWrites ? key : null, decodeWrites ? value : null);
    }

    /**
     * paged_decode for the batch's single tokens over keys and values laid out as the paged cache
     * (slot-major rows in blocks of {@code blockSize}, as {@code metadata}'s block tables name them),
     * split over the context; {@code keys} and {@code values} are their addresses, or tensors a recording
     * then holds. With {@code key} and {@code value} ([T, kvWidth], or columns of one product
     * as {@code rotary} says) it also writes them at the batch's slots, and with {@code rotary} it rotates
     * the queries and those keys first.
     */
    private void launchDecode(Kernel decode, BatchOnDevice metadata, Object keys, Object values, int blockSize, CudaTensor query,
                              CudaTensor output, AttentionParams params, CudaTensor slopes, CudaTensor relativeBias,
                              DecodeRotary rotary, CudaTensor key, CudaTensor value) {
        int singles = metadata.singleCount();
        // A graph serves every context its block tables can hold, so it splits over all of them.
        // (Blocks that loop over several partitions, so that a graph's grid holds no more blocks
        // than short contexts need, measured 9-13% slower at 64 and 256 sequences on an H100.)
        int span = recording != null ? metadata.blockTableStride() * blockSize : metadata.longestSingleContext();
        int partitionSize = decodePartitionSize(singles * params.numKvHeads(), span, params.headDim());
        int partitions = (span + partitionSize - 1) / partitionSize;
        int cluster = decodeCluster(decode, singles * params.numKvHeads(), partitions);
        partitions = (partitions + cluster - 1) / cluster * cluster;
        DeviceBuffer partials = partitions == 1 ? null
                : decodePartials.atLeast((long) singles * params.numHeads() * partitions * (params.headDim() + 2) * Float.BYTES);
        DeviceBuffer counters = partitions == 1 ? null : decodeCounters((long) singles * params.numKvHeads() * Integer.BYTES);
        boolean columnsOfOneProduct = rotary != null && rotary.rowStride() > 0;
        int qStride = columnsOfOneProduct ? rotary.rowStride() : params.numHeads() * params.headDim();
        int kvStride = columnsOfOneProduct ? rotary.rowStride() : params.numKvHeads() * params.headDim();
        Object[] arguments = {
                query, output, keys, values, metadata.positions(),
                metadata.tokenSequences(), metadata.blockTables(), metadata.blockTableStride(), blockSize,
                params.numHeads(), params.numKvHeads(), params.scale(), params.slidingWindow(),
                params.logitSoftcap(), slopes, metadata.singles(), partials, counters, partitionSize,
                key, value, key == null ? null : metadata.slots(),
                rotary == null ? null : rotary.cosSin(), rotary == null ? 0 : rotary.cosSin().typeCode(),
                rotary == null ? 0 : rotary.rotaryDim(), rotary != null && rotary.neoxStyle() ? 1 : 0,
                rotary == null ? 0 : rotary.cosSin().rows(), rotary == null ? null : rotary.positions(),
                errors.buffer(), qStride, kvStride};
        if (relativeBias != null) {
            // The _relative kernels' two parameters more: the bias table and its distance.
            arguments = Arrays.copyOf(arguments, arguments.length + 2);
            arguments[arguments.length - 2] = relativeBias;
            arguments[arguments.length - 1] = biasDistance(params);
        }
        kernels.launchVolumeClustered(decode, singles, params.numKvHeads(), partitions, 1, cluster, DECODE_THREADS, arguments);
    }

    /**
     * paged_attention (one block per token and head) for {@code tokens} tokens: the batch's first
     * ones, or those whose indices {@code tokenList} holds on the device.
     */
    private void genericAttention(int tokens, Long tokenList, CudaTensor query, CudaTensor output, CudaKvCache pages,
                                  int layer, BatchOnDevice metadata, AttentionParams params, CudaTensor slopes,
                                  CudaTensor bias, DecodeRotary rotary) {
        if (rotary != null) throw new IllegalStateException("a fused decode step reached the generic attention kernel");
        kernels.launchGrid(Kernel.PAGED_ATTENTION, tokens, params.numHeads(), ATTENTION_THREADS,
                query, output, pages.keys(layer), pages.values(layer), metadata.positions(),
                metadata.tokenSequences(), metadata.blockTables(), metadata.blockTableStride(), pages.spec().blockSize(),
                params.numHeads(), params.numKvHeads(), params.headDim(), params.scale(), params.slidingWindow(),
                params.logitSoftcap(), slopes, tokenList, bias, biasDistance(params));
    }

    /**
     * How many consecutive partitions of a token run as one cluster of paged_decode blocks, which
     * merge their parts through distributed shared memory when all of the token's keys lie in
     * them: a power of two, up to 16 where the kernel may have clusters above 8 (8 otherwise), at
     * least the partitions (the grid is padded to a whole number of clusters). Only where the
     * clusters of every (token, KV head) pair fit on the SMs at once, as at batch 1: there a step's
     * attention is a chain of latencies, and on an H100 batch 1 measured 171.9 / 171.9 tok/s
     * against 171.1 / 171.1 with the merge through global memory, where steady batch 16 (512
     * blocks, clusters of 4) measured 2,258 / 2,259 against 2,334 / 2,339. 1 for one partition,
     * before compute capability 9.0, or with -Djvllm.cuda.decodeClusters=false.
     */
    private int decodeCluster(Kernel decode, int tokenHeadPairs, int partitions) {
        if (partitions <= 1 || !DECODE_CLUSTERS || context.computeMajor < 9) return 1;
        int widest = largeDecodeClusters.computeIfAbsent(decode, kernels::allowLargeClusters) ? 16 : 8;
        // A token's parts then span several clusters and merge through global memory anyway, and
        // clusters only constrain where the blocks run: batch 1 over 16k positions in partitions
        // of 256 took 56.1 µs launched in clusters of 16, 47.8 without (decode_bench, H100).
        if (partitions > widest && DECODE_FEW_PAIR_PARTITIONS) return 1;
        int cluster = 2;
        while (cluster < partitions && cluster < widest) cluster *= 2;
        return (long) tokenHeadPairs * cluster <= context.multiprocessors ? cluster : 1;
    }

    /**
     * paged_decode's per-(token, KV head) counters of finished partitions, zero between launches
     * (the last block of each resets its own): zeroed when the kept buffer is made or grown. A
     * graph captured while it grew holds the zeroing too, which then runs on counters already zero.
     */
    private DeviceBuffer decodeCounters(long bytes) {
        DeviceBuffer counters = decodeCounterBuffer.atLeast(bytes);
        if (counters != zeroedDecodeCounters) {
            context.driver.fill(counters.address(), (byte) 0, counters.bytes(), context.stream);
            zeroedDecodeCounters = counters;
        }
        return counters;
    }

    /**
     * The key positions a paged_decode block takes: the longest partition of its form (scalar or
     * tiled), halved down to the shortest while the batch's (token, KV head) pairs times the partitions of
     * {@code span} positions give fewer blocks than DECODE_BLOCKS_PER_MULTIPROCESSOR per SM; for the
     * tiled form and few pairs (batch 1), {@link #fewPairsPartitionSize}.
     */
    private int decodePartitionSize(int tokenHeadPairs, int span, int headDim) {
        boolean tiled = activationType != DType.F32 && KernelCompiler.tiledDecode(headDim);
        int size = tiled ? DECODE_TILED_PARTITION : DECODE_SCALAR_PARTITION;
        int shortest = tiled ? DECODE_TILED_SHORTEST_PARTITION : DECODE_SCALAR_SHORTEST_PARTITION;
        if (tiled && DECODE_FEW_PAIR_PARTITIONS && (long) tokenHeadPairs * DECODE_CLUSTER_PARTITIONS <= context.multiprocessors) {
            return fewPairsPartitionSize(span, shortest, size);
        }
        long wanted = (long) DECODE_BLOCKS_PER_MULTIPROCESSOR * context.multiprocessors;
        while (size > shortest && (long) tokenHeadPairs * ((span + size - 1) / size) < wanted) {
            size /= 2;
        }
        return size;
    }

    /**
     * Partitions for a batch of few (token, KV head) pairs, as at batch 1 (each pair's cluster of
     * 16 fits on the SMs): a span in 16 partitions, one cluster's worth, of up to 512 positions;
     * beyond 8192 positions in 32 or more of 512-{@code longest}. Halving down to two blocks an SM
     * instead left batch 1 with 64 short partitions a pair at every span above 1024; on an H100
     * (decode_bench, L2 evicted, contexts just over half and near the whole span) this rule took
     * 15.9 / 18.1 µs against 20.6 / 21.9 at a span of 2048, 19.8 / 22.6 against 24.8 / 35.9 at
     * 4096, 26.9 / 30.2 against 29.7 / 41.3 at 8192 and 32.3 / 43.3 against 34.8 / 54.6 at 16384.
     * Llama-3-8B at batch 1, one call: 152.5 / 152.5 tok/s against 142.9 / 143.0 after a
     * 16000-token prompt, 155.6 against 154.0 after 8000, 167.9 / 167.6 against 166.9 / 166.9 after 2048.
     */
    private static int fewPairsPartitionSize(int span, int shortest, int longest) {
        int size = ceilingPowerOfTwo((span + DECODE_CLUSTER_PARTITIONS - 1) / DECODE_CLUSTER_PARTITIONS);
        if (size > 512) size = Math.max(512, ceilingPowerOfTwo((span + 31) / 32));
        return Math.clamp(size, shortest, Math.max(shortest, longest));
    }

    private static int ceilingPowerOfTwo(int n) {
        return n <= 1 ? 1 : Integer.highestOneBit(n - 1) << 1;
    }


    /**
     * The decode kernel that reads each key once for a group of query heads, or null where
     * paged_attention takes the decode tokens (other head sizes, groups above 8; with a relative bias,
     * heads other than 64 and 128 wide or groups above 4).
     */
    private Kernel pagedDecode(AttentionParams params) {
        int group = params.numHeads() / params.numKvHeads();
        if (params.relativeBias() != null) {
            // T5's decoder: the _relative kernels, built in 16-bit modules only.
            if (group > 4 || activationType == DType.F32) return null;
            return switch (params.headDim()) {
                case 64 -> Kernel.PAGED_DECODE_64_G4_RELATIVE;
                case 128 -> Kernel.PAGED_DECODE_128_G4_RELATIVE;
                default -> null;
            };
        }
        if (group > DECODE_MAX_GROUP) return null;
        boolean small = group <= 4;
        return switch (params.headDim()) {
            case 64 -> small ? Kernel.PAGED_DECODE_64_G4 : Kernel.PAGED_DECODE_64_G8;
            case 80 -> small ? Kernel.PAGED_DECODE_80_G4 : Kernel.PAGED_DECODE_80_G8;  // Phi-2
            case 96 -> small ? Kernel.PAGED_DECODE_96_G4 : Kernel.PAGED_DECODE_96_G8;  // Phi-3-mini, Phi-3-Vision
            case 128 -> small ? Kernel.PAGED_DECODE_128_G4 : Kernel.PAGED_DECODE_128_G8;
            // Gemma; groups of 8 (Gemma-2B) only in the tiled form
            case 256 -> small ? Kernel.PAGED_DECODE_256_G4 : KernelCompiler.tiledDecode(256) ? Kernel.PAGED_DECODE_256_G8 : null;
            default -> null;
        };
    }

    /** The tensor-core prefill kernel for this head size and these queries, or null where paged_attention takes every token. */
    private Kernel flashPrefill(int headDim, CudaTensor query) {
        if (activationType == DType.F32) return null;
        Kernel flash = switch (headDim) {
            case 64 -> Kernel.FLASH_PREFILL_64;
            case 80 -> Kernel.FLASH_PREFILL_80;
            case 96 -> Kernel.FLASH_PREFILL_96;
            case 128 -> Kernel.FLASH_PREFILL_128;
            // 99 KB of shared memory a block, refused before compute capability 8.0; copies its queries
            // into shared memory 16 bytes at a time.
            case 256 -> query.address() % 16 == 0 ? Kernel.FLASH_PREFILL_256 : null;
            default -> null;
        };
        return flash != null && kernels.supports(flash) ? flash : null;
    }

    @Override
    public void encoderAttention(Tensor q, Tensor k, Tensor v, ForwardBatch batch, AttentionParams params, Tensor out) {
        String kernel = "encoderAttention";
        CudaTensor query = cuda(q, kernel, "q");
        CudaTensor key = cuda(k, kernel, "k");
        CudaTensor value = cuda(v, kernel, "v");
        CudaTensor output = cuda(out, kernel, "out");
        for (CudaTensor t : new CudaTensor[]{query, key, value, output}) {
            requireActivation(kernel, "input", t);
        }
        KernelShapes.checkEncoderAttention(query, key, value, batch, params, output);
        if (params.headDim() > MAX_HEAD_DIM) {
            throw new JvllmException(kernel + ": head dim " + params.headDim() + " is above the "
                    + MAX_HEAD_DIM + " the CUDA encoder attention kernel supports");
        }
        if (query.overlaps(output) || key.overlaps(output) || value.overlaps(output)) {
            throw new IllegalArgumentException(kernel + ": out " + output + " overlaps q, k or v");
        }
        int tokens = batch.numTokens();
        if (tokens == 0) return;
        CudaTensor sequences = encoderSequences(batch);
        context.makeCurrent();
        Kernel tiled = switch (params.headDim()) {
            case 32 -> Kernel.ENCODER_ATTENTION_TILED_32;
            case 64 -> Kernel.ENCODER_ATTENTION_TILED_64;
            case 80 -> Kernel.ENCODER_ATTENTION_TILED_80;
            default -> null;
        };
        CudaTensor bias = relativeBias(params);
        // encoder_flash copies key and value rows into shared memory 16 bytes at a time.
        boolean aligned = key.address() % 16 == 0 && value.address() % 16 == 0;
        // With a relative bias (T5's encoder) the _relative kernels, 64 and 128 wide; the generic kernel otherwise.
        Kernel flash = activationType == DType.F32 || !ENCODER_FLASH || !aligned ? null : bias != null ? switch (params.headDim()) {
            case 64 -> Kernel.ENCODER_FLASH_64_RELATIVE;
            case 128 -> Kernel.ENCODER_FLASH_128_RELATIVE;
            default -> null;
        } : switch (params.headDim()) {
            case 32 -> Kernel.ENCODER_FLASH_32;
            case 64 -> Kernel.ENCODER_FLASH_64;
            case 80 -> Kernel.ENCODER_FLASH_80;
            case 128 -> Kernel.ENCODER_FLASH_128;
            default -> null;
        };
        if (flash != null) {
            int tiles = (tokens + BatchOnDevice.TILE_TOKENS - 1) / BatchOnDevice.TILE_TOKENS;
            long starts = sequences.address() + (long) tokens * Integer.BYTES;
            if (bias != null) {
                kernels.launchGrid(flash, tiles, params.numHeads(), FLASH_THREADS, query, key, value, output, sequences.address(),
                        starts, tokens, params.numHeads(), params.numKvHeads(), params.scale(), params.logitSoftcap(), bias,
                        biasDistance(params));
            } else {
                kernels.launchGrid(flash, tiles, params.numHeads(), FLASH_THREADS, query, key, value, output, sequences.address(),
                        starts, tokens, params.numHeads(), params.numKvHeads(), params.scale(), params.logitSoftcap());
            }
            return;
        }
        if (tiled != null && ENCODER_TILES && bias == null) {
            kernels.launchGrid(tiled, (tokens + ENCODER_QUERIES - 1) / ENCODER_QUERIES, params.numHeads(), ENCODER_QUERIES,
                    query, key, value, output, sequences.address(), sequences.address() + (long) tokens * Integer.BYTES,
                    tokens, params.numHeads(), params.numKvHeads(), params.scale(), params.logitSoftcap());
            return;
        }
        kernels.launchGrid(Kernel.ENCODER_ATTENTION, tokens, params.numHeads(), ATTENTION_THREADS,
                query, key, value, output, sequences.address(), sequences.address() + (long) tokens * Integer.BYTES,
                params.numHeads(), params.numKvHeads(), params.headDim(), params.scale(), params.logitSoftcap(), bias,
                biasDistance(params));
    }

    /** The params' relative bias on the device (uploaded once per array), or null for none. */
    private CudaTensor relativeBias(AttentionParams params) {
        if (params.relativeBias() == null) return null;
        float[] values = params.relativeBias().values();
        return relativeBiases.computeIfAbsent(values, b -> (CudaTensor) constant(b, 1, b.length));
    }

    private static int biasDistance(AttentionParams params) {
        return params.relativeBias() == null ? 0 : params.relativeBias().maxDistance();
    }

    /**
     * Each token's sequence, then the batch's queryStarts, on the device: what encoder_attention
     * reads. Uploaded once per batch, as every layer gets the same one.
     */
    private CudaTensor encoderSequences(ForwardBatch batch) {
        if (batch != encoderBatch) {
            int tokens = batch.numTokens();
            int sequences = batch.numSequences();
            int[] packed = new int[tokens + sequences + 1];
            for (int s = 0; s < sequences; s++) {
                for (int t = batch.queryStarts()[s]; t < batch.queryStarts()[s + 1]; t++) packed[t] = s;
            }
            System.arraycopy(batch.queryStarts(), 0, packed, tokens, sequences + 1);
            encoderSequences = (CudaTensor) indices(packed);
            encoderBatch = batch;
        }
        return encoderSequences;
    }

    /**
     * paged_decode for cross-attention in 16-bit builds, where its heads have a decode kernel and every
     * sequence's rows start at a multiple of {@link Backend#CROSS_ATTENTION_ROW_ALIGNMENT} (kept rows
     * read as a cache of blocks of that many rows); null for the generic kernel (one block a token and
     * head, each warp a key at a time: 120 µs a layer for one BART-large token over 512 rows on an H200).
     * paged_decode reads its first tile before waiting on the kernel ahead, which is safe here as for
     * the cache: a pass writes kept rows (its encoder's products) before any of its decoder's kernels.
     */
    private Kernel crossDecode(AttentionParams params, int[] ranges) {
        if (activationType == DType.F32 || GENERIC_ATTENTION) return null;
        for (int s = 0; s < ranges.length; s += 2) {
            if (ranges[s] % CROSS_ATTENTION_ROW_ALIGNMENT != 0) return null;
        }
        return pagedDecode(params);
    }

    @Override
    public void crossAttention(Tensor q, Tensor keys, Tensor values, int[] ranges, int longestRange, ForwardBatch batch,
                               AttentionParams params, Tensor out) {
        String kernel = "crossAttention";
        CudaTensor query = cuda(q, kernel, "q");
        CudaTensor key = cuda(keys, kernel, "keys");
        CudaTensor value = cuda(values, kernel, "values");
        CudaTensor output = cuda(out, kernel, "out");
        for (CudaTensor t : new CudaTensor[]{query, key, value, output}) {
            requireActivation(kernel, "input", t);
        }
        KernelShapes.checkCrossAttention(query, key, value, ranges, longestRange, batch, params, output);
        if (params.headDim() > MAX_HEAD_DIM) {
            throw new JvllmException(kernel + ": head dim " + params.headDim() + " is above the " + MAX_HEAD_DIM
                    + " the CUDA cross-attention kernel supports");
        }
        if (query.overlaps(output) || key.overlaps(output) || value.overlaps(output)) {
            throw new IllegalArgumentException(kernel + ": out " + output + " overlaps q, keys or values");
        }
        int tokens = batch.numTokens();
        if (tokens == 0) return;
        Kernel decode = crossDecode(params, ranges);
        if (decode != null) {
            if (ranges != crossRowsRanges) {
                crossRows = BatchOnDevice.crossRows(batch, ranges, longestRange, CROSS_ATTENTION_ROW_ALIGNMENT, this::indices);
                crossRowsRanges = ranges;
            }
            context.makeCurrent();
            // The planes as tensors, so that a recording holds them (a kept-rows plane replaced by a larger one
            // is freed once unreachable, and an early-launched graph must not read it freed).
            launchDecode(decode, crossRows, key, value, CROSS_ATTENTION_ROW_ALIGNMENT, query, output, params,
                    null, null, null, null, null);
            return;
        }
        CudaTensor sequences = encoderSequences(batch);
        if (ranges != crossRanges) {
            crossRangesOnDevice = (CudaTensor) indices(ranges);
            crossRanges = ranges;
        }
        context.makeCurrent();
        kernels.launchGrid(Kernel.CROSS_ATTENTION, tokens, params.numHeads(), ATTENTION_THREADS,
                query, key, value, output, sequences.address(), crossRangesOnDevice.address(),
                params.numHeads(), params.numKvHeads(), params.headDim(), params.scale());
    }

    @Override
    public void latentAttention(Tensor qLatent, Tensor qRope, Tensor latent, Tensor keyRope, KvCache cache, int layer,
                                ForwardBatch batch, AttentionParams params, Tensor out) {
        String kernel = "latentAttention";
        CudaTensor ql = cuda(qLatent, kernel, "qLatent");
        CudaTensor qr = cuda(qRope, kernel, "qRope");
        CudaTensor c = cuda(latent, kernel, "latent");
        CudaTensor kr = cuda(keyRope, kernel, "keyRope");
        CudaTensor output = cuda(out, kernel, "out");
        if (!(cache instanceof CudaKvCache pages)) {
            throw new IllegalArgumentException(kernel + ": the KV cache " + cache + " was not made by the CUDA backend");
        }
        for (CudaTensor t : new CudaTensor[]{ql, qr, c, kr, output}) {
            requireActivation(kernel, "input", t);
        }
        KvCacheSpec spec = pages.spec();
        KernelShapes.checkLatentAttention(ql, qr, c, kr, spec, layer, batch, params, output);
        int rank = params.headDim();
        int ropeDim = kr.cols();
        if (rank > MAX_LATENT_RANK || ropeDim > MAX_LATENT_ROPE_DIM) {
            throw new JvllmException(kernel + ": latent rows of " + rank + " + " + ropeDim + " are above the "
                    + MAX_LATENT_RANK + " + " + MAX_LATENT_ROPE_DIM + " the CUDA latent attention kernel supports");
        }
        if (ql.overlaps(output) || qr.overlaps(output)) {
            throw new IllegalArgumentException(kernel + ": out " + output + " overlaps a query");
        }
        int tokens = batch.numTokens();
        if (tokens == 0) return;
        BatchOnDevice metadata = batchOnDevice(batch, pages);
        CudaTensor slopes = params.alibiSlopes() == null ? null
                : alibiSlopes.computeIfAbsent(params.alibiSlopes(), s -> (CudaTensor) constant(s, 1, s.length));
        context.makeCurrent();
        kernels.launch(Kernel.WRITE_LATENT_CACHE, tokens, rowThreads(rank + ropeDim),
                c, kr, metadata.slots(), rank, ropeDim, pages.keys(layer));
        kernels.launchGrid(Kernel.LATENT_ATTENTION, tokens, params.numHeads(), ATTENTION_THREADS,
                ql, qr, output, pages.keys(layer), metadata.positions(), metadata.tokenSequences(),
                metadata.blockTables(), metadata.blockTableStride(), spec.blockSize(), params.numHeads(), rank, ropeDim,
                params.scale(), params.slidingWindow(), params.logitSoftcap(), slopes);
    }

    @Override
    public void scatterAddRows(Tensor source, Tensor rows, Tensor weights, Tensor out) {
        String kernel = "scatterAddRows";
        CudaTensor src = cuda(source, kernel, "source");
        CudaTensor indices = cuda(rows, kernel, "rows");
        CudaTensor scale = cuda(weights, kernel, "weights");
        CudaTensor output = cuda(out, kernel, "out");
        requireActivation(kernel, "source", src);
        requireActivation(kernel, "out", output);
        KernelShapes.checkScatterAddRows(src, indices, scale, output);
        int count = src.rows();
        if (src.overlaps(output)) {
            throw new IllegalArgumentException(kernel + ": out " + output + " overlaps source");
        }
        if (count == 0) return;
        context.makeCurrent();
        kernels.launch(Kernel.SCATTER_ADD_ROWS, count, rowThreads(src.cols()),
                src, indices, scale, scale.typeCode(), output.rows(), src.cols(), output, errors.buffer());
    }

    @Override
    public void headwiseLinear(Tensor x, Tensor weight, int heads, Tensor out) {
        String kernel = "headwiseLinear";
        CudaTensor input = cuda(x, kernel, "x");
        CudaTensor w = dense(weight, kernel, "weight");
        CudaTensor output = cuda(out, kernel, "out");
        requireActivation(kernel, "x", input);
        requireActivation(kernel, "out", output);
        int outPerHead = KernelShapes.checkHeadwiseLinear(input, w, heads, output);
        int in = input.cols() / heads;
        if (input.overlaps(output)) {
            throw new IllegalArgumentException(kernel + ": out " + output + " overlaps its input x");
        }
        if (input.rows() == 0) return;
        context.makeCurrent();
        kernels.launchGrid(Kernel.HEADWISE_LINEAR, input.rows(), heads, rowThreads(outPerHead),
                input, w, w.typeCode(), heads, in, outPerHead, output);
    }

    /**
     * The batch's positions, slots and block tables on the device. Every layer of a forward pass
     * gets the same batch, so it is checked and uploaded once, on the first layer's call (a
     * ForwardBatch is taken as immutable: one whose arrays change between calls is not seen anew).
     */
    private BatchOnDevice batchOnDevice(ForwardBatch batch, CudaKvCache cache) {
        if (batch != uploadedBatch || cache != uploadedFor) {
            uploadedBatchData = BatchOnDevice.upload(batch, cache.spec(), this::indices);
            uploadedBatch = batch;
            uploadedFor = cache;
        }
        return uploadedBatchData;
    }

    @Override
    public synchronized void close() {
        if (closed) return;
        closed = true;
        try {
            context.makeCurrent();
            context.driver.synchronize(context.stream);
            if (kernelTimer != null) kernelTimer.close();
            graphs.close();
            if (tunedProducts != null) tunedProducts.close();
            cublas.destroy(cublasHandle);
            kernels.close();
            alibiSlopes.clear();
            memory.close();
            context.driver.freeHost(staging);
            for (UploadSlot slot : uploadSlots) slot.release();
            if (sampledSlots != null) {
                for (SampledSlot slot : sampledSlots) slot.release();
            }
        } finally {
            hostArena.close();
            context.close();
        }
    }

    // ---- launch shapes ----------------------------------------------------------------------

    /** Blocks for n elements taken a 16-byte piece a thread where n is whole pieces (elementwise.cu's gated_pieces). */
    private int pieceBlocks(long n) {
        return elementwiseBlocks(n % pieceElements == 0 ? n / pieceElements : n);
    }

    private static int elementwiseBlocks(long n) {
        return (int) Math.min(MAX_BLOCKS, (n + ELEMENTWISE_THREADS - 1) / ELEMENTWISE_THREADS);
    }

    /** Threads for a block that walks a row of {@code width}: whole warps, at most 1024. */
    /**
     * Threads of an RMSNorm block: one 16-byte piece of the row each where the row is whole pieces
     * and fits (norms.cu keeps it in registers then), otherwise as {@link #rowThreads}.
     */
    private int normThreads(int width) {
        return width % pieceElements == 0 && width <= pieceElements * 1024 ? rowThreads(width / pieceElements) : rowThreads(width);
    }

    /** A rotary block's threads: a pair each, or a 16-byte piece of pairs each where rotary.cu's rotates_in_pieces may hold. */
    private int rotaryThreads(int heads, int headDim, int rotaryDim, boolean neoxStyle) {
        int half = rotaryDim / 2;
        boolean pieces = neoxStyle && half % pieceElements == 0 && headDim % pieceElements == 0;
        return rowThreads(heads * half / (pieces ? pieceElements : 1));
    }

    static int rowThreads(int width) {
        return Math.clamp((width + 31) / 32 * 32, 32, 1024);
    }

    // ---- checks -----------------------------------------------------------------------------

    private void requireNotRecording(String what) {
        if (recording != null) throw new GraphRecording.Abort("the pass " + what, GraphRecording.Abort.Remedy.NEVER);
    }

    private static CudaTensor cuda(Tensor tensor, String kernel, String role) {
        if (tensor instanceof CudaTensor t) {
            return t;
        }
        if (tensor instanceof Int4CudaWeight) {
            throw new IllegalArgumentException(kernel + ": " + role + " (" + tensor + ") is a 4-bit weight, which only the "
                    + "products read (a model that hands one to another kernel should load it decoded: WeightScope.decoded())");
        }
        throw new IllegalArgumentException(kernel + ": " + role + " (" + tensor + ") was not made by the CUDA backend");
    }

    private void requireActivation(String kernel, String role, CudaTensor t) {
        KernelShapes.requireType(kernel, role, t, activationType());
    }

    /** A product's output checked: of the activation type, of x · weightᵀ's shape, apart from x. */
    private void checkProduct(String kernel, CudaTensor input, Tensor weight, Tensor bias, CudaTensor output) {
        requireActivation(kernel, "out", output);
        KernelShapes.checkLinear(input, weight, bias, output);
        if (input.overlaps(output)) {
            throw new IllegalArgumentException(kernel + ": out " + output + " overlaps its input x");
        }
    }

    private static void requireWeightType(String name, DType type) {
        if (type != DType.F32 && type != DType.BF16 && type != DType.F16) {
            throw new JvllmException("tensor '" + name + "' is " + type
                    + "; the CUDA backend reads F32, BF16 and F16 weights");
        }
    }

    private void checkRowwise(String kernel, CudaTensor x, CudaTensor weight, CudaTensor bias, CudaTensor out) {
        requireActivation(kernel, "x", x);
        requireActivation(kernel, "out", out);
        KernelShapes.checkRowwise(kernel, x, weight, bias, out);
    }

    private void checkElementwise(String kernel, CudaTensor a, CudaTensor b, CudaTensor out) {
        requireActivation(kernel, "first input", a);
        requireActivation(kernel, "second input", b);
        requireActivation(kernel, "out", out);
        KernelShapes.checkElementwise(kernel, a, b, out);
    }

    @Override
    public String toString() {
        return "CUDA backend on " + context;
    }

    // ---- mixtures of experts (CudaExperts, moe.cu) -------------------------------------------

    private CudaExperts mixtures;

    private CudaExperts mixtures() {
        if (mixtures == null) mixtures = new CudaExperts(context, memory, kernels, errors, activationType);
        return mixtures;
    }

    @Override
    public Tensor allocateIndices(int rows, int cols) {
        if (rows < 0 || cols < 0) {
            throw new IllegalArgumentException("cannot allocate " + rows + " × " + cols + " indices");
        }
        DeviceBuffer buffer = memory.allocate((long) rows * cols * Integer.BYTES, DeviceMemory.Kind.STREAM_ORDERED);
        return new CudaTensor(buffer, 0, DType.I32, rows, cols, "indices");
    }

    @Override
    public void routeSoftmaxTopK(Tensor logits, int topK, boolean normalize, Tensor experts, Tensor weights) {
        String kernel = "routeSoftmaxTopK";
        CudaTensor scores = cuda(logits, kernel, "logits");
        CudaTensor ids = cuda(experts, kernel, "experts");
        CudaTensor chosen = cuda(weights, kernel, "weights");
        requireActivation(kernel, "logits", scores);
        requireActivation(kernel, "weights", chosen);
        KernelShapes.checkRouting(scores, topK, ids, chosen);
        mixtures().route(scores, topK, normalize, ids, chosen);
    }

    @Override
    public ExpertWeights expertWeights(List<Tensor> gates, List<Tensor> ups, List<Tensor> downs) {
        KernelShapes.checkExpertWeights(gates, ups, downs);
        return mixtures().prepare(gates.stream().map(t -> dense(t, "expertWeights", "gate")).toList(),
                ups.stream().map(t -> dense(t, "expertWeights", "up")).toList(),
                downs.stream().map(t -> dense(t, "expertWeights", "down")).toList());
    }

    @Override
    public void expertFeedForward(Tensor x, ExpertWeights experts, Tensor expertIds, Tensor weights, Tensor out) {
        String kernel = "expertFeedForward";
        CudaTensor input = cuda(x, kernel, "x");
        CudaTensor ids = cuda(expertIds, kernel, "expert ids");
        CudaTensor chosen = cuda(weights, kernel, "weights");
        CudaTensor output = cuda(out, kernel, "out");
        if (!(experts instanceof CudaExperts.Experts set)) {
            throw new IllegalArgumentException(kernel + ": the experts " + experts + " were not made by the CUDA backend");
        }
        requireActivation(kernel, "x", input);
        requireActivation(kernel, "out", output);
        KernelShapes.checkExpertFeedForward(input, set, ids, chosen, output);
        if (input.overlaps(output)) {
            throw new IllegalArgumentException(kernel + ": out " + output + " overlaps its input x");
        }
        if (recording == null && input.rows() > EXPERT_KERNELS_MAX_EAGER_TOKENS && !expertTilesForLargeBatches) {
            expertsByProducts(input, set, ids, chosen, output);
            return;
        }
        mixtures().feedForward(input, set, ids, chosen, output);
    }

    /**
     * Batches of more tokens than this, outside a CUDA graph (prompt chunks), run each expert's
     * products through cuBLAS: on an H200, moe.cu's tensor-core tiles ran a 4096-token Mixtral
     * prefill at about 80 TFLOP/s, where cuBLAS runs these shapes at 800 and more.
     */
    private static final int EXPERT_KERNELS_MAX_EAGER_TOKENS = 64;
    private boolean expertTilesForLargeBatches;

    private DeviceBuffer expertProducts;

    /** The kept area of the per-expert products, grown when smaller than {@code bytes}. */
    private DeviceBuffer expertProducts(long bytes) {
        if (expertProducts == null || expertProducts.bytes() < bytes) {
            expertProducts = null;  // the old area is freed once unreachable
            expertProducts = memory.allocate(bytes, DeviceMemory.Kind.PERSISTENT);
        }
        return expertProducts;
    }

    /** For tests: large batches take moe.cu's tensor-core tiles, as inside a CUDA graph. */
    void useExpertTilesForLargeBatches(boolean tiles) {
        this.expertTilesForLargeBatches = tiles;
    }

    /**
     * The grouped feed-forward with per-expert cuBLAS products: the choices grouped by expert on
     * the device and read back (one wait a layer, small beside a prompt chunk's work), the rows
     * gathered in expert order, each expert's gate, up and down products on its rows, then the
     * rows put back in choice order for moe_combine.
     */
    private void expertsByProducts(CudaTensor x, CudaExperts.Experts set, CudaTensor ids, CudaTensor weights,
                                   CudaTensor out) {
        int tokens = x.rows(), topK = ids.cols(), choices = tokens * topK;
        int count = set.count(), hidden = set.hidden(), intermediate = set.intermediate();
        CudaTensor grouping = (CudaTensor) allocateIndices(count + 1 + choices, 1);
        mixtures().group(ids, choices, count, (CudaTensor) grouping.rows(0, count + 1),
                (CudaTensor) grouping.rows(count + 1, choices));
        float[] grouped = toFloatArray(grouping);
        int routed = (int) grouped[count];
        int[] tokenOfRow = new int[routed];
        int[] rowOfChoice = new int[choices];
        for (int row = 0; row < routed; row++) {
            int choice = (int) grouped[count + 1 + row];
            tokenOfRow[row] = choice / topK;
            rowOfChoice[choice] = row;
        }
        // Kept between passes, as the models keep their activations: the profiling pass of the
        // largest step sizes it, so the KV cache is sized with it already taken.
        long element = activationType.byteSize();
        long rowBytes = (3L * hidden + 2L * intermediate) * element;
        DeviceBuffer area = expertProducts((long) choices * rowBytes);
        CudaTensor results = new CudaTensor(area, 0, activationType, choices, hidden, "expert outputs");
        if (routed > 0) {
            productsByExpert(x, set, grouped, tokenOfRow, rowOfChoice, results, area, (long) choices * hidden * element);
        }
        mixtures().combine(results, ids, weights, count, hidden, out);
    }

    /** Each routed row's expert output, into {@code results} in choice order. */
    private void productsByExpert(CudaTensor x, CudaExperts.Experts set, float[] grouped, int[] tokenOfRow,
                                  int[] rowOfChoice, CudaTensor results, DeviceBuffer area, long at) {
        int count = set.count(), hidden = set.hidden(), intermediate = set.intermediate();
        int routed = tokenOfRow.length;
        long element = activationType.byteSize();
        CudaTensor sortedInput = new CudaTensor(area, at, activationType, routed, hidden, "expert inputs");
        at += (long) routed * hidden * element;
        CudaTensor sortedOutput = new CudaTensor(area, at, activationType, routed, hidden, "expert outputs by expert");
        at += (long) routed * hidden * element;
        CudaTensor gates = new CudaTensor(area, at, activationType, routed, intermediate, "expert gates");
        at += (long) routed * intermediate * element;
        CudaTensor ups = new CudaTensor(area, at, activationType, routed, intermediate, "expert ups");
        gather("expertFeedForward", x, (CudaTensor) indices(tokenOfRow), sortedInput);
        List<CudaTensor> w = set.weights();
        for (int e = 0; e < count; e++) {
            int first = (int) grouped[e], rows = (int) grouped[e + 1] - first;
            if (rows == 0) continue;
            Tensor expertInput = sortedInput.rows(first, rows);
            Tensor activated = gates.rows(0, rows);
            gatedLinear(Activation.SILU, expertInput, w.get(e), w.get(count + e), ups.rows(0, rows), activated);
            linear(activated, w.get(2 * count + e), null, sortedOutput.rows(first, rows));
        }
        gather("expertFeedForward", sortedOutput, (CudaTensor) indices(rowOfChoice), results);
    }

    @Override
    public void addSigmoidGatedRows(Tensor source, Tensor gate, Tensor out) {
        String kernel = "addSigmoidGatedRows";
        CudaTensor src = cuda(source, kernel, "source");
        CudaTensor g = cuda(gate, kernel, "gate");
        CudaTensor output = cuda(out, kernel, "out");
        checkElementwise(kernel, src, src, output);
        requireActivation(kernel, "gate", g);
        KernelShapes.checkSigmoidGatedRows(src, g, output);
        if (src.overlaps(output)) {
            throw new IllegalArgumentException(kernel + ": out " + output + " overlaps source");
        }
        mixtures().addSigmoidGatedRows(src, g, output);
    }
}
