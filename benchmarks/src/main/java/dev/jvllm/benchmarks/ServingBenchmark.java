package dev.jvllm.benchmarks;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.jvllm.LLM;
import dev.jvllm.server.OpenAiServer;

import java.io.BufferedReader;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.Semaphore;

/**
 * Serving, as vLLM's {@code benchmark_serving} with its random dataset: the model behind jvllm's
 * OpenAI-compatible server in this process, {@code --num-prompts} streamed completions of
 * {@code --input-len} random token ids and {@code --output-len} tokens (EOS ignored, greedy), all
 * sent at once or at most {@code --max-concurrency} at a time, over loopback HTTP. Reports request
 * and token throughput, time to first token, time per output token, inter-token latency (the gap
 * between streamed chunks) and end-to-end latency; set beside {@code bench-throughput}'s offline
 * figure, it is what the HTTP layer and streaming cost.
 */
public final class ServingBenchmark {

    private static final String USAGE = """
            usage: ./jvllm bench-serving [options]
              --num-prompts N             requests (default 32)
              --max-concurrency N         requests in flight at once (default: all)
            """ + BenchmarkOptions.COMMON_USAGE;
    private static final ObjectMapper JSON = new ObjectMapper();

    private ServingBenchmark() {
    }

    /** One request's timings, in seconds from its sending. */
    private record Timing(double firstToken, double end, List<Double> gaps, int outputTokens) {
    }

    public static void main(String[] args) throws Exception {
        BenchmarkOptions options = BenchmarkOptions.parse(args, USAGE);
        LLM llm = options.loadWarmedUp();
        int vocab = llm.modelConfig().vocabSize();
        try (OpenAiServer server = OpenAiServer.builder(llm).port(0).servedModelName("bench").start();
             ExecutorService clients = Executors.newVirtualThreadPerTaskExecutor()) {
            HttpClient http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();
            URI completions = URI.create(server.address() + "/v1/completions");
            Semaphore slots = new Semaphore(options.maxConcurrency > 0 ? options.maxConcurrency : options.numPrompts);
            // One untimed round on other prompts first: the JIT compiles the HTTP, JSON and streaming
            // paths, which the engine's warm-up did not run, on the cores the timed steps need.
            run(http, completions, clients, slots, BenchmarkOptions.randomPrompts(options.numPrompts, options.inputLen, vocab,
                    options.seed + 1), options.outputLen);
            var before = server.metrics().orElseThrow();
            long start = System.nanoTime();
            List<Timing> done = run(http, completions, clients, slots,
                    BenchmarkOptions.randomPrompts(options.numPrompts, options.inputLen, vocab, options.seed), options.outputLen);
            double seconds = (System.nanoTime() - start) / 1e9;

            long outputTokens = done.stream().mapToLong(Timing::outputTokens).sum();
            Map<String, Object> results = new LinkedHashMap<>();
            results.put("num_prompts", options.numPrompts);
            results.put("max_concurrency", options.maxConcurrency > 0 ? options.maxConcurrency : options.numPrompts);
            results.put("duration_s", Percentiles.round(seconds));
            results.put("requests_per_s", Percentiles.round(options.numPrompts / seconds));
            results.put("output_tokens", outputTokens);
            results.put("output_tokens_per_s", Percentiles.round(outputTokens / seconds));
            results.put("total_tokens_per_s", Percentiles.round((outputTokens + (long) options.numPrompts * options.inputLen) / seconds));
            results.put("ttft", Percentiles.summaryMillis(done.stream().map(Timing::firstToken).toList()));
            results.put("tpot", Percentiles.summaryMillis(done.stream().filter(t -> t.outputTokens() > 1)
                    .map(t -> (t.end() - t.firstToken()) / (t.outputTokens() - 1)).toList()));
            results.put("itl", Percentiles.summaryMillis(done.stream().flatMap(t -> t.gaps().stream()).toList()));
            results.put("e2e_latency", Percentiles.summaryMillis(done.stream().map(Timing::end).toList()));
            // The engine's share: its steps during the run and the time it spent in them.
            server.metrics().ifPresent(m -> {
                results.put("engine_steps", m.steps() - before.steps());
                results.put("engine_step_s", Percentiles.round((m.stepNanos() - before.stepNanos()) / 1e9));
            });
            Path file = ResultFile.write("serving", options, llm, results);
            System.out.printf("%d requests in %.2f s: %.2f requests/s, %.1f output tokens/s; TTFT median %.1f ms, TPOT median %.2f ms%n",
                    options.numPrompts, seconds, options.numPrompts / seconds, outputTokens / seconds,
                    ((Map<?, ?>) results.get("ttft")).get("p50_ms"), ((Map<?, ?>) results.get("tpot")).get("p50_ms"));
            System.out.println("written: " + file);
        }
    }

    /** Sends a streamed completion for each prompt, at most as many at once as {@code slots} allows, and times each. */
    private static List<Timing> run(HttpClient http, URI completions, ExecutorService clients, Semaphore slots, List<int[]> prompts,
                                    int outputLen) throws Exception {
        List<Future<Timing>> timings = new ArrayList<>();
        for (int[] prompt : prompts) {
            String body = "{\"model\": \"bench\", \"prompt\": " + Arrays.toString(prompt) + ", \"max_tokens\": " + outputLen
                    + ", \"ignore_eos\": true, \"temperature\": 0, \"stream\": true, \"stream_options\": {\"include_usage\": true}}";
            timings.add(clients.submit(() -> {
                slots.acquire();
                try {
                    return send(http, completions, body);
                } finally {
                    slots.release();
                }
            }));
        }
        List<Timing> done = new ArrayList<>();
        for (Future<Timing> timing : timings) done.add(timing.get());
        return done;
    }

    /** Sends one streamed completion and times its chunks; its token count comes from the usage chunk. */
    private static Timing send(HttpClient http, URI completions, String body) throws Exception {
        long sent = System.nanoTime();
        HttpResponse<InputStream> response = http.send(HttpRequest.newBuilder(completions)
                .POST(HttpRequest.BodyPublishers.ofString(body)).build(), HttpResponse.BodyHandlers.ofInputStream());
        if (response.statusCode() != 200) {
            throw new IllegalStateException("the server answered " + response.statusCode() + ": "
                    + new String(response.body().readAllBytes(), StandardCharsets.UTF_8));
        }
        double first = -1, last = 0;
        List<Double> gaps = new ArrayList<>();
        int tokens = 0;
        try (BufferedReader lines = new BufferedReader(new InputStreamReader(response.body(), StandardCharsets.UTF_8))) {
            for (String line; (line = lines.readLine()) != null; ) {
                if (!line.startsWith("data: ") || line.equals("data: [DONE]")) continue;
                double now = (System.nanoTime() - sent) / 1e9;
                JsonNode chunk = JSON.readTree(line.substring(6));
                if (chunk.has("usage") && chunk.path("choices").isEmpty()) {
                    tokens = chunk.path("usage").path("completion_tokens").asInt();
                    continue;
                }
                if (chunk.has("error")) throw new IllegalStateException("the stream failed: " + chunk.get("error"));
                if (first < 0) first = now;
                else gaps.add(now - last);
                last = now;
            }
        }
        return new Timing(first, last, gaps, tokens);
    }
}
