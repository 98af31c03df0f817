package dev.jvllm.benchmarks;

import dev.jvllm.RequestOutput;
import dev.jvllm.SamplingParams;
import dev.jvllm.engine.LLMEngine;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Runs requests through an engine step by step and times each: when its first output token came
 * (time to first token) and when it finished, all measured from the moment they were submitted
 * together.
 */
final class TimedRun {

    /** One request's timings, in seconds from submission, and its output length. */
    record RequestTiming(double firstToken, double finished, int outputTokens) {
        /** Time per output token after the first (TPOT); NaN for one-token outputs. */
        double perOutputToken() {
            return outputTokens > 1 ? (finished - firstToken) / (outputTokens - 1) : Double.NaN;
        }
    }

    /** Everything a run measured. */
    record Result(double seconds, List<RequestTiming> requests, long promptTokens, long outputTokens) {
        double requestsPerSecond() {
            return requests.size() / seconds;
        }

        List<Double> ttft() {
            return requests.stream().map(RequestTiming::firstToken).toList();
        }

        List<Double> tpot() {
            return requests.stream().map(RequestTiming::perOutputToken).filter(t -> !t.isNaN()).toList();
        }
    }

    private TimedRun() {
    }

    /** Submits every prompt at once and steps the engine until all have finished. */
    static Result run(LLMEngine engine, List<int[]> prompts, SamplingParams params, String idPrefix) {
        Map<String, Double> firstToken = new HashMap<>();
        List<RequestTiming> timings = new ArrayList<>();
        long outputTokens = 0;
        long start = System.nanoTime();
        for (int i = 0; i < prompts.size(); i++) engine.addRequest(idPrefix + i, prompts.get(i), params);
        while (engine.hasUnfinishedRequests()) {
            List<RequestOutput> outputs = engine.step();
            double now = (System.nanoTime() - start) / 1e9;
            for (RequestOutput out : outputs) {
                firstToken.putIfAbsent(out.requestId(), now);
                if (out.finished()) {
                    int tokens = out.outputs().stream().mapToInt(c -> c.tokenIds().size()).sum();
                    outputTokens += tokens;
                    timings.add(new RequestTiming(firstToken.get(out.requestId()), now, tokens));
                }
            }
        }
        double seconds = (System.nanoTime() - start) / 1e9;
        long promptTokens = prompts.stream().mapToLong(p -> p.length).sum();
        return new Result(seconds, timings, promptTokens, outputTokens);
    }
}
