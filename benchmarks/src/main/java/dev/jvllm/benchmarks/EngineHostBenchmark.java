package dev.jvllm.benchmarks;

import dev.jvllm.EngineConfig;
import dev.jvllm.RequestOutput;
import dev.jvllm.SamplingParams;
import dev.jvllm.engine.EngineMetrics;
import dev.jvllm.engine.ForwardBatch;
import dev.jvllm.engine.LLMEngine;
import dev.jvllm.spi.Backend;
import dev.jvllm.spi.CausalLM;
import dev.jvllm.spi.KvCache;
import dev.jvllm.spi.KvCacheSpec;
import dev.jvllm.spi.Tensor;
import dev.jvllm.weights.DType;

import java.lang.management.ManagementFactory;
import java.lang.reflect.Proxy;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Optional;
import java.util.Random;
import java.util.function.IntFunction;
import java.util.function.Supplier;

import static dev.jvllm.benchmarks.JsonLines.emit;

/**
 * The engine's host work per decode step, measured without a GPU (issue 4): {@link LLMEngine}
 * runs on a model whose forward pass returns at once and a backend that claims to record passes
 * (as CUDA graphs do, so decode steps are padded), so a step's time is the engine's own
 * bookkeeping: scheduling, the {@link ForwardBatch} (block tables, slots, positions), the padding
 * for the recorded shapes, accepting the sampled tokens, stop checks and the outputs. On a GPU the
 * device idles through all of it.
 *
 * <p>Per batch size: that many requests of {@code --context} random prompt tokens are prefilled
 * in one step, then {@code --steps} decode steps are timed one by one (contexts context to
 * context + steps); {@code --warmup} rounds of that warm the JIT, then {@code --rounds} are
 * reported, all on one engine. One JSON line per batch size: percentiles and mean of a step's
 * wall time (p50 is the typical step; the mean also carries the garbage collections and, on a
 * shared machine, the preemptions that land in a step), the engine's own split of its step time
 * ({@link EngineMetrics}: issuing the pass, getting the argmax back, the rest, as GpuBenchmark's
 * {@code engine_time}; before commit 2c320bf that clock left scheduling out), and the bytes
 * allocated per step.
 *
 * <pre>
 * ./jvllm java dev.jvllm.benchmarks.EngineHostBenchmark [--sequences 64,256] [--context 512] [--steps 128]
 *          [--warmup 2] [--rounds 10] [--block-size 16] [--eager] [--prefix-caching] [--text] [--finished-only | --deltas]
 * </pre>
 * {@code --text} gives the engine a stand-in tokenizer (each token decodes to a few characters)
 * so that the outputs carry text; {@code --eager} turns the padding for recorded passes off.
 */
public final class EngineHostBenchmark {

    /** Llama-3-8B's vocabulary, and its KV cache per token (32 layers, 8 KV heads of 128). */
    private static final int VOCAB = 128256;
    private static final int MIN_MODEL_LEN = 1024;

    /**
     * How the engine is stepped: {@code step} (whole outputs), {@code finished} (--finished-only: as LLM.generate,
     * LLMEngine.stepFinished) or {@code deltas} (--deltas: as AsyncLLMEngine streams, LLMEngine.stepDeltas).
     */
    private static String outputs = "step";

    private EngineHostBenchmark() {
    }

    public static void main(String[] args) {
        List<Integer> batches = List.of(64, 256);
        int context = 512, steps = 128, warmup = 2, rounds = 10, blockSize = 16;
        boolean eager = false, prefixCaching = false, text = false;
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "--sequences" -> batches = Arrays.stream(args[++i].split(",")).map(String::trim).map(Integer::valueOf).toList();
                case "--context" -> context = Integer.parseInt(args[++i]);
                case "--steps" -> steps = Integer.parseInt(args[++i]);
                case "--warmup" -> warmup = Integer.parseInt(args[++i]);
                case "--rounds" -> rounds = Integer.parseInt(args[++i]);
                case "--block-size" -> blockSize = Integer.parseInt(args[++i]);
                case "--eager" -> eager = true;
                case "--prefix-caching" -> prefixCaching = true;
                case "--text" -> text = true;
                case "--finished-only" -> outputs = "finished";
                case "--deltas" -> outputs = "deltas";
                default -> throw new IllegalArgumentException("unknown option " + args[i]);
            }
        }
        for (int batch : batches) {
            run(batch, context, steps, warmup, rounds, blockSize, eager, prefixCaching, text);
        }
    }

    private static void run(int batch, int context, int steps, int warmup, int rounds, int blockSize, boolean eager,
                            boolean prefixCaching, boolean text) {
        HostOnlyModel model = new HostOnlyModel();
        int maxModelLen = Math.max(MIN_MODEL_LEN, context + steps + 1);
        long blocksPerSequence = (maxModelLen + blockSize - 1) / blockSize;
        long kvBytes = batch * blocksPerSequence * blockSize * model.kvCacheSpec(1, blockSize).bytesPerToken(2);
        // One prefill step for all prompts, so that every sequence decodes in every timed step.
        EngineConfig config = new EngineConfig(maxModelLen, blockSize, kvBytes, batch, batch * context, prefixCaching, 0L,
                "host-only", 1, 0.9, eager);
        Random random = new Random(0);
        List<Double> stepMicros = new ArrayList<>();
        long allocated = 0, timedSteps = 0;
        long engineSteps = 0, stepNanos = 0, forwardNanos = 0, resultNanos = 0;  // of the timed decode steps
        try (LLMEngine engine = new LLMEngine(model, hostOnlyBackend(), text ? new StandInCodec() : null, List.of(2),
                maxModelLen, config)) {
            SamplingParams params = SamplingParams.builder().temperature(0).ignoreEos(true).maxTokens(steps + 1).build();
            for (int round = 0; round < warmup + rounds; round++) {
                for (int r = 0; r < batch; r++) {
                    engine.addRequest(round + "-" + r, random.ints(context, 1000, 120_000).toArray(), params);
                }
                engine.step();  // the prefill, sampling every sequence's first token
                if (engine.metrics().running() != batch) throw new IllegalStateException("not all sequences run: " + engine.metrics());
                boolean reported = round >= warmup;
                EngineMetrics before = engine.metrics();
                long allocBefore = allocatedBytes();
                int finished = 0;
                for (int s = 0; s < steps; s++) {
                    long start = System.nanoTime();
                    List<RequestOutput> made = switch (outputs) {
                        case "finished" -> engine.stepFinished();
                        case "deltas" -> engine.stepDeltas();
                        default -> engine.step();
                    };
                    long nanos = System.nanoTime() - start;
                    for (RequestOutput out : made) if (out.finished()) finished++;
                    if (reported) stepMicros.add(nanos / 1e3);
                }
                if (reported) {
                    allocated += allocatedBytes() - allocBefore;
                    timedSteps += steps;
                    EngineMetrics after = engine.metrics();
                    engineSteps += after.steps() - before.steps();
                    stepNanos += after.stepNanos() - before.stepNanos();
                    forwardNanos += after.forwardNanos() - before.forwardNanos();
                    resultNanos += after.resultNanos() - before.resultNanos();
                }
                if (finished != batch || engine.hasUnfinishedRequests()) {
                    throw new IllegalStateException(finished + " of " + batch + " requests finished: " + engine.metrics());
                }
            }
        }
        double[] sorted = stepMicros.stream().mapToDouble(Double::doubleValue).sorted().toArray();
        double stepUs = stepNanos / 1e3 / engineSteps;
        double forwardUs = forwardNanos / 1e3 / engineSteps;
        double resultUs = resultNanos / 1e3 / engineSteps;
        emit("engine_host_step", "sequences", batch, "context", context + "-" + (context + steps), "block_size", blockSize,
                "graphs_padding", !eager, "prefix_caching", prefixCaching, "text", text, "outputs", outputs, "timed_steps", sorted.length,
                "step_us_p50", round(Percentiles.percentile(sorted, 50)),
                "step_us_mean", round(Arrays.stream(sorted).average().orElse(Double.NaN)),
                "step_us_p90", round(Percentiles.percentile(sorted, 90)),
                "step_us_p99", round(Percentiles.percentile(sorted, 99)), "step_us_max", round(sorted[sorted.length - 1]),
                "engine_step_us", round(stepUs), "issue_forward_us", round(forwardUs), "wait_result_us", round(resultUs),
                "other_us", round(stepUs - forwardUs - resultUs),
                "allocated_kb_per_step", round(allocated / 1024.0 / Math.max(1, timedSteps)));
    }

    private static long allocatedBytes() {
        return ((com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean()).getCurrentThreadAllocatedBytes();
    }

    /** Logits that are never read: the backend below answers their argmax itself. */
    private record NoLogits(int rows, int cols) implements Tensor {
        @Override
        public DType dtype() {
            return DType.BF16;
        }

        @Override
        public Tensor rows(int start, int count) {
            return new NoLogits(count, cols);
        }

        @Override
        public Tensor reshape(int rows, int cols) {
            return new NoLogits(rows, cols);
        }
    }

    /** Llama-3-8B's cache shape and vocabulary, and a forward pass that does nothing. */
    private static final class HostOnlyModel implements CausalLM {
        @Override
        public KvCacheSpec kvCacheSpec(int numBlocks, int blockSize) {
            return new KvCacheSpec(32, numBlocks, blockSize, 8, 128);
        }

        @Override
        public int vocabSize() {
            return VOCAB;
        }

        @Override
        public Tensor forward(ForwardBatch batch, KvCache cache) {
            return new NoLogits(batch.logitRows().length, VOCAB);
        }
    }

    /**
     * A backend that records passes as far as the engine can tell (so decode steps are padded as
     * for CUDA graphs), holds no cache, and answers each row's argmax with a varying token id.
     * Anything else it is asked fails.
     */
    private static Backend hostOnlyBackend() {
        int[] next = {1000};
        return (Backend) Proxy.newProxyInstance(Backend.class.getClassLoader(), new Class<?>[]{Backend.class},
                (proxy, method, args) -> switch (method.getName()) {
                    case "name" -> "host-only";
                    case "activationType" -> DType.BF16;
                    case "deviceMemory" -> Optional.empty();
                    case "capturesGraphs" -> true;
                    case "runCaptured" -> ((Supplier<?>) args[1]).get();
                    case "allocateKvCache" -> new NoCache((KvCacheSpec) args[0]);
                    case "argmaxRows" -> {
                        int[] ids = new int[((Tensor) args[0]).rows()];
                        for (int i = 0; i < ids.length; i++) ids[i] = next[0] = 1000 + (next[0] * 31 + 7) % 100_000;
                        yield ids;
                    }
                    case "close" -> null;
                    case "hashCode" -> System.identityHashCode(proxy);
                    case "equals" -> proxy == args[0];
                    case "toString" -> "host-only backend";
                    default -> throw new UnsupportedOperationException("host-only backend: " + method.getName());
                });
    }

    private record NoCache(KvCacheSpec spec) implements KvCache {
        @Override
        public void close() {
        }
    }

    /** A tokenizer's stand-in: every token decodes to a space and its id's last two digits. */
    private static final class StandInCodec implements LLMEngine.TextCodec {
        @Override
        public int[] encode(String prompt) {
            throw new UnsupportedOperationException("prompts are token ids");
        }

        @Override
        public IntFunction<String> newDetokenizer(int[] promptTokenIds, SamplingParams params) {
            return this::tokenText;
        }

        @Override
        public String tokenText(int tokenId) {
            return " w" + tokenId % 100;
        }
    }

    private static double round(double v) {
        return Math.round(v * 10) / 10.0;
    }

}
