package dev.jvllm.benchmarks;

import dev.jvllm.EngineConfig;
import dev.jvllm.LLM;
import dev.jvllm.SamplingParams;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Random;

/**
 * Command-line options shared by the benchmarks, named as vLLM's benchmark scripts name them, and
 * what follows from them: the model to load, the engine settings and the random prompts.
 */
final class BenchmarkOptions {

    static final String COMMON_USAGE = """
              --model M                   model directory, or "random" for a random-weight Llama-3.2-1B-shaped
                                          checkpoint, or "random:KEY=V,..." to change its shape (hidden, intermediate,
                                          layers, heads, kv-heads, vocab, tied, llama3-rope)   (default models/jvllm-demo)
              --input-len N               prompt tokens per request (default 128)
              --output-len N              output tokens per request, EOS ignored (default 32)
              --max-num-seqs N            most sequences per step, i.e. the batch size limit (default 256)
              --max-num-batched-tokens N  most tokens per step (default 2048)
              --max-model-len N           (default input-len + output-len)
              --kv-cache-memory BYTES     KV cache size, suffix K/M/G allowed (default 1G)
              --no-prefix-caching         turn the prefix cache off
              --threads N                 CPU threads (default: all)
              --seed N                    seed of the random prompts (default 0)
              --warmup-seconds S          untimed small batches first, for the JIT (default 5; 0: none)
              --output-json PATH          where to write the result (default benchmarks/results/NAME.json)
            """;

    String model = "models/jvllm-demo";
    int inputLen = 128;
    int outputLen = 32;
    int numPrompts = 32;
    int maxConcurrency;
    int batchSize = 8;
    int numIters = 3;
    int numItersWarmup = 1;
    int maxNumSeqs = EngineConfig.defaults().maxNumSeqs();
    int maxNumBatchedTokens = EngineConfig.defaults().maxNumBatchedTokens();
    int maxModelLen;
    long kvCacheMemory = EngineConfig.defaults().kvCacheMemoryBytes();
    boolean prefixCaching = true;
    int threads;
    long seed;
    double warmupSeconds = 5;
    Path outputJson;
    final List<String> arguments;

    private BenchmarkOptions(List<String> arguments) {
        this.arguments = arguments;
    }

    /** Parses {@code args}; on a bad option prints {@code usage} and exits with status 2. */
    static BenchmarkOptions parse(String[] args, String usage) {
        BenchmarkOptions o = new BenchmarkOptions(List.of(args));
        try {
            for (int i = 0; i < args.length; i++) {
                String option = args[i];
                if (option.equals("-h") || option.equals("--help")) {
                    System.out.print(usage);
                    System.exit(0);
                }
                if (option.equals("--no-prefix-caching")) {
                    o.prefixCaching = false;
                    continue;
                }
                if (i + 1 >= args.length) throw new IllegalArgumentException(option + " needs a value");
                String value = args[++i];
                switch (option) {
                    case "--model" -> o.model = value;
                    case "--input-len" -> o.inputLen = positive(option, value);
                    case "--output-len" -> o.outputLen = positive(option, value);
                    case "--num-prompts" -> o.numPrompts = positive(option, value);
                    case "--max-concurrency" -> o.maxConcurrency = positive(option, value);
                    case "--batch-size" -> o.batchSize = positive(option, value);
                    case "--num-iters" -> o.numIters = positive(option, value);
                    case "--num-iters-warmup" -> o.numItersWarmup = Integer.parseInt(value);
                    case "--max-num-seqs" -> o.maxNumSeqs = positive(option, value);
                    case "--max-num-batched-tokens" -> o.maxNumBatchedTokens = positive(option, value);
                    case "--max-model-len" -> o.maxModelLen = positive(option, value);
                    case "--kv-cache-memory" -> o.kvCacheMemory = bytes(value);
                    case "--threads" -> o.threads = Integer.parseInt(value);
                    case "--seed" -> o.seed = Long.parseLong(value);
                    case "--warmup-seconds" -> o.warmupSeconds = Double.parseDouble(value);
                    case "--output-json" -> o.outputJson = Path.of(value);
                    default -> throw new IllegalArgumentException("unknown option " + option);
                }
            }
        } catch (IllegalArgumentException e) {
            System.err.println("jvllm: " + e.getMessage() + "\n" + usage);
            System.exit(2);
        }
        if (o.maxModelLen == 0) o.maxModelLen = o.inputLen + o.outputLen;
        return o;
    }

    /** The model directory: a random checkpoint is written to the cache first if needed. */
    Path modelDirectory() {
        if (model.equals("random") || model.startsWith("random:")) {
            LlamaShape shape = LlamaShape.LLAMA_3_2_1B.with(model.equals("random") ? "" : model.substring(7));
            return RandomLlamaCheckpoint.ensure(shape, RandomLlamaCheckpoint.DEFAULT_CACHE);
        }
        return Path.of(model);
    }

    /** A builder of the model of {@link #modelDirectory()} with these options' engine settings. */
    LLM.Builder builder() {
        return LLM.builder().model(modelDirectory().toString()).maxModelLen(maxModelLen).maxNumSeqs(maxNumSeqs)
                .maxNumBatchedTokens(maxNumBatchedTokens).kvCacheMemoryBytes(kvCacheMemory)
                .enablePrefixCaching(prefixCaching).threads(threads);
    }

    /** The model of {@link #modelDirectory()} loaded with these options, then warmed up ({@link Warmup}). */
    LLM loadWarmedUp() {
        LLM llm = builder().build();
        try {
            Warmup.run(llm, this);
            return llm;
        } catch (RuntimeException | Error e) {
            llm.close();
            throw e;
        }
    }

    /** Every request generates exactly {@code outputLen} tokens (vLLM's ignore_eos), greedily. */
    SamplingParams samplingParams(int outputTokens) {
        return SamplingParams.builder().temperature(0).ignoreEos(true).maxTokens(outputTokens).build();
    }

    /** {@code count} prompts of {@code length} random token ids, as vLLM's random dataset. */
    static List<int[]> randomPrompts(int count, int length, int vocabSize, long promptSeed) {
        Random random = new Random(promptSeed);
        List<int[]> prompts = new ArrayList<>(count);
        for (int i = 0; i < count; i++) prompts.add(random.ints(length, Math.min(10, vocabSize - 1), vocabSize).toArray());
        return prompts;
    }

    /** The engine and workload settings, for the result file. */
    Map<String, Object> describe() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("input_len", inputLen);
        m.put("output_len", outputLen);
        m.put("max_num_seqs", maxNumSeqs);
        m.put("max_num_batched_tokens", maxNumBatchedTokens);
        m.put("max_model_len", maxModelLen);
        m.put("kv_cache_memory_bytes", kvCacheMemory);
        m.put("enable_prefix_caching", prefixCaching);
        m.put("threads", threads == 0 ? Runtime.getRuntime().availableProcessors() : threads);
        m.put("seed", seed);
        m.put("warmup_seconds", warmupSeconds);
        return m;
    }

    private static int positive(String option, String value) {
        int v = Integer.parseInt(value);
        if (v <= 0) throw new IllegalArgumentException(option + " must be positive, got " + v);
        return v;
    }

    private static long bytes(String value) {
        String v = value.trim().toUpperCase(Locale.ROOT);
        long unit = switch (v.isEmpty() ? ' ' : v.charAt(v.length() - 1)) {
            case 'K' -> 1L << 10;
            case 'M' -> 1L << 20;
            case 'G' -> 1L << 30;
            default -> 1;
        };
        return Long.parseLong(unit == 1 ? v : v.substring(0, v.length() - 1)) * unit;
    }
}
