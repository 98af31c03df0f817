package dev.jvllm;

/**
 * Engine settings, vLLM's engine arguments in Java form; built by {@link LLM.Builder}.
 *
 * @param maxModelLen          longest sequence (prompt + output); 0 = the model's max_position_embeddings
 * @param blockSize            tokens per KV-cache block
 * @param kvCacheMemoryBytes   memory for the KV cache; 0 = automatic: 1 GiB on the CPU backend, and on a
 *                             GPU what {@code gpuMemoryUtilization} leaves after the weights and a
 *                             profiling forward pass of the largest step
 * @param maxNumSeqs           most sequences in one step
 * @param maxNumBatchedTokens  most tokens in one step (prompts longer than this are chunked)
 * @param enablePrefixCaching  reuse KV blocks of identical prompt prefixes
 * @param seed                 seed of the engine's random source (requests without their own seed)
 * @param device               "auto", "cpu", "cuda" or "cuda:N" (a GPU by its index)
 * @param threads              CPU kernel threads, 0 = all processors
 * @param gpuMemoryUtilization share of a GPU's memory the engine may use (weights, activations and KV cache)
 * @param enforceEager         never record forward passes as CUDA graphs: every kernel is launched one by one
 * @param asyncScheduling      as vLLM's {@code async_scheduling}: launch a decode step before the
 *                             tokens of the step ahead of it are read back, those tokens taken on
 *                             the device, so that the device does not wait for the host between steps
 *                             (greedy steps on a backend that queues its work and supports it, a GPU;
 *                             others run as before)
 * @param limitImagesPerPrompt as vLLM's {@code limit_mm_per_prompt={"image": n}}: the most images a prompt
 *                             may hold (0: none), each costing an encoder pass and its features' memory
 * @param speculativeConfig    speculative decoding (vLLM's {@code speculative_config}); null: none. Steps that
 *                             verify guesses are not queued ahead (async scheduling) nor recorded as graphs
 */
public record EngineConfig(int maxModelLen, int blockSize, long kvCacheMemoryBytes, int maxNumSeqs,
                           int maxNumBatchedTokens, boolean enablePrefixCaching, Long seed, String device,
                           int threads, double gpuMemoryUtilization, boolean enforceEager, boolean asyncScheduling,
                           int limitImagesPerPrompt, SpeculativeConfig speculativeConfig) {

    /** The most images a prompt may hold unless told otherwise. */
    public static final int DEFAULT_IMAGES_PER_PROMPT = 16;

    /** The KV cache on the CPU backend when kvCacheMemoryBytes is 0 (automatic). */
    public static final long DEFAULT_CPU_KV_CACHE_BYTES = 1L << 30;

    public static EngineConfig defaults() {
        return new EngineConfig(0, 16, 0, 256, 2048, true, null, "auto", 0, 0.9, false, true, DEFAULT_IMAGES_PER_PROMPT, null);
    }

    /** The settings without speculative decoding, as before it existed. */
    public EngineConfig(int maxModelLen, int blockSize, long kvCacheMemoryBytes, int maxNumSeqs, int maxNumBatchedTokens,
                        boolean enablePrefixCaching, Long seed, String device, int threads, double gpuMemoryUtilization,
                        boolean enforceEager, boolean asyncScheduling, int limitImagesPerPrompt) {
        this(maxModelLen, blockSize, kvCacheMemoryBytes, maxNumSeqs, maxNumBatchedTokens, enablePrefixCaching, seed,
                device, threads, gpuMemoryUtilization, enforceEager, asyncScheduling, limitImagesPerPrompt, null);
    }

    /** The settings with the default image limit, as before images existed. */
    public EngineConfig(int maxModelLen, int blockSize, long kvCacheMemoryBytes, int maxNumSeqs, int maxNumBatchedTokens,
                        boolean enablePrefixCaching, Long seed, String device, int threads, double gpuMemoryUtilization,
                        boolean enforceEager, boolean asyncScheduling) {
        this(maxModelLen, blockSize, kvCacheMemoryBytes, maxNumSeqs, maxNumBatchedTokens, enablePrefixCaching, seed,
                device, threads, gpuMemoryUtilization, enforceEager, asyncScheduling, DEFAULT_IMAGES_PER_PROMPT);
    }

    /** The settings without async scheduling, as before it existed. */
    public EngineConfig(int maxModelLen, int blockSize, long kvCacheMemoryBytes, int maxNumSeqs, int maxNumBatchedTokens,
                        boolean enablePrefixCaching, Long seed, String device, int threads, double gpuMemoryUtilization,
                        boolean enforceEager) {
        this(maxModelLen, blockSize, kvCacheMemoryBytes, maxNumSeqs, maxNumBatchedTokens, enablePrefixCaching, seed,
                device, threads, gpuMemoryUtilization, enforceEager, false);
    }

    /** The settings with CUDA graphs allowed, as before {@code enforceEager} existed. */
    public EngineConfig(int maxModelLen, int blockSize, long kvCacheMemoryBytes, int maxNumSeqs, int maxNumBatchedTokens,
                        boolean enablePrefixCaching, Long seed, String device, int threads, double gpuMemoryUtilization) {
        this(maxModelLen, blockSize, kvCacheMemoryBytes, maxNumSeqs, maxNumBatchedTokens, enablePrefixCaching, seed,
                device, threads, gpuMemoryUtilization, false);
    }

    /** The settings without the GPU share (0.9), as before it existed. */
    public EngineConfig(int maxModelLen, int blockSize, long kvCacheMemoryBytes, int maxNumSeqs, int maxNumBatchedTokens,
                        boolean enablePrefixCaching, Long seed, String device, int threads) {
        this(maxModelLen, blockSize, kvCacheMemoryBytes, maxNumSeqs, maxNumBatchedTokens, enablePrefixCaching, seed,
                device, threads, 0.9);
    }

    public EngineConfig {
        check(maxModelLen >= 0, "maxModelLen", maxModelLen);
        check(blockSize > 0 && blockSize <= 1024, "blockSize", blockSize);
        check(kvCacheMemoryBytes >= 0, "kvCacheMemoryBytes", kvCacheMemoryBytes);
        check(gpuMemoryUtilization > 0 && gpuMemoryUtilization <= 1, "gpuMemoryUtilization", gpuMemoryUtilization);
        check(maxNumSeqs > 0, "maxNumSeqs", maxNumSeqs);
        check(maxNumBatchedTokens > 0, "maxNumBatchedTokens", maxNumBatchedTokens);
        check(threads >= 0, "threads", threads);
        check(limitImagesPerPrompt >= 0, "limitImagesPerPrompt", limitImagesPerPrompt);
    }

    private static void check(boolean ok, String field, Object value) {
        if (!ok) throw new IllegalArgumentException("engine option " + field + " out of range: " + value);
    }
}
