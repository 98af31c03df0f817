package dev.jvllm.benchmarks;

import dev.jvllm.LLM;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Latency of one batch, as vLLM's {@code benchmark_latency}: {@code --batch-size} random prompts of
 * {@code --input-len} tokens generate {@code --output-len} tokens each, {@code --num-iters} times
 * after {@code --num-iters-warmup} untimed runs; reports the batch latency (mean and percentiles) and
 * the requests' time to first token and time per output token. Each iteration draws new prompts, so
 * the prefix cache cannot serve one iteration from an earlier one.
 */
public final class LatencyBenchmark {

    private static final String USAGE = """
            usage: ./jvllm bench-latency [options]
              --batch-size N              requests per batch (default 8)
              --num-iters N               timed iterations (default 3)
              --num-iters-warmup N        untimed iterations first (default 1)
            """ + BenchmarkOptions.COMMON_USAGE;

    private LatencyBenchmark() {
    }

    public static void main(String[] args) {
        BenchmarkOptions options = BenchmarkOptions.parse(args, USAGE);
        try (LLM llm = options.loadWarmedUp()) {
            int vocab = llm.modelConfig().vocabSize();
            List<Double> latencies = new ArrayList<>();
            List<Double> ttft = new ArrayList<>();
            List<Double> tpot = new ArrayList<>();
            for (int iter = -options.numItersWarmup; iter < options.numIters; iter++) {
                TimedRun.Result run = TimedRun.run(llm.engine(),
                        BenchmarkOptions.randomPrompts(options.batchSize, options.inputLen, vocab, options.seed + 1000L * iter),
                        options.samplingParams(options.outputLen), "iteration" + iter + "-");
                if (iter < 0) continue;
                latencies.add(run.seconds());
                ttft.addAll(run.ttft());
                tpot.addAll(run.tpot());
                System.out.printf("iteration %d: %.3f s%n", iter, run.seconds());
            }
            double[] sorted = latencies.stream().mapToDouble(Double::doubleValue).sorted().toArray();
            Map<String, Object> latency = new LinkedHashMap<>();
            latency.put("mean_s", Percentiles.round(latencies.stream().mapToDouble(Double::doubleValue).average().orElseThrow()));
            for (int p : new int[]{10, 25, 50, 75, 90, 99}) latency.put("p" + p + "_s", Percentiles.round(Percentiles.percentile(sorted, p)));
            Map<String, Object> results = new LinkedHashMap<>();
            results.put("batch_size", options.batchSize);
            results.put("num_iters", options.numIters);
            results.put("num_iters_warmup", options.numItersWarmup);
            results.put("latency", latency);
            results.put("latencies_s", latencies.stream().map(Percentiles::round).toList());
            results.put("output_tokens_per_s", Percentiles.round(options.batchSize * options.outputLen / (double) latency.get("mean_s")));
            results.put("ttft", Percentiles.summaryMillis(ttft));
            results.put("tpot", Percentiles.summaryMillis(tpot));
            Path file = ResultFile.write("latency", options, llm, results);
            System.out.printf("Avg latency: %.3f seconds%n", (double) latency.get("mean_s"));
            System.out.println("latency " + latency + "\nTTFT " + results.get("ttft") + "\nTPOT " + results.get("tpot")
                    + "\nwritten to " + file);
        }
    }
}
