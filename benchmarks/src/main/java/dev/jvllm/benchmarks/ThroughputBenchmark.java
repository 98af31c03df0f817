package dev.jvllm.benchmarks;

import dev.jvllm.LLM;
import dev.jvllm.engine.EngineMetrics;

import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Offline throughput, as vLLM's {@code benchmark_throughput}: {@code --num-prompts} random prompts
 * of {@code --input-len} tokens, each generating exactly {@code --output-len} tokens, all submitted
 * at once; reports requests/s and input, output and total tokens/s, with each request's time to
 * first token and time per output token. {@code --max-num-seqs 1} runs them one at a time.
 */
public final class ThroughputBenchmark {

    private static final String USAGE = """
            usage: ./jvllm bench-throughput [options]
              --num-prompts N             requests, all submitted at once (default 32)
            """ + BenchmarkOptions.COMMON_USAGE;

    private ThroughputBenchmark() {
    }

    public static void main(String[] args) {
        BenchmarkOptions options = BenchmarkOptions.parse(args, USAGE);
        try (LLM llm = options.loadWarmedUp()) {
            int vocab = llm.modelConfig().vocabSize();
            EngineMetrics before = llm.metrics();
            TimedRun.Result run = TimedRun.run(llm.engine(),
                    BenchmarkOptions.randomPrompts(options.numPrompts, options.inputLen, vocab, options.seed),
                    options.samplingParams(options.outputLen), "request-");
            EngineMetrics after = llm.metrics();

            Map<String, Object> results = new LinkedHashMap<>();
            results.put("num_requests", options.numPrompts);
            results.put("elapsed_s", Percentiles.round(run.seconds()));
            results.put("requests_per_s", Percentiles.round(run.requestsPerSecond()));
            results.put("input_tokens_per_s", Percentiles.round(run.promptTokens() / run.seconds()));
            results.put("output_tokens_per_s", Percentiles.round(run.outputTokens() / run.seconds()));
            results.put("total_tokens_per_s", Percentiles.round((run.promptTokens() + run.outputTokens()) / run.seconds()));
            results.put("ttft", Percentiles.summaryMillis(run.ttft()));
            results.put("tpot", Percentiles.summaryMillis(run.tpot()));
            results.put("steps", after.steps() - before.steps());
            results.put("preemptions", after.preemptions() - before.preemptions());
            Path file = ResultFile.write("throughput", options, llm, results);
            System.out.printf("Throughput: %.3f requests/s, %.2f total tokens/s, %.2f output tokens/s%n",
                    run.requestsPerSecond(), (run.promptTokens() + run.outputTokens()) / run.seconds(),
                    run.outputTokens() / run.seconds());
            System.out.println("TTFT " + results.get("ttft") + "\nTPOT " + results.get("tpot") + "\nwritten to " + file);
        }
    }
}
