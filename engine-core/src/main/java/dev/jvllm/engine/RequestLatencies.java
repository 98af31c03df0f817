package dev.jvllm.engine;

import dev.jvllm.CompletionOutput;
import dev.jvllm.RequestOutput;

import java.util.Arrays;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicLongArray;
import java.util.concurrent.atomic.DoubleAdder;

/**
 * The latencies of an {@link AsyncLLMEngine}'s requests, as vLLM's server reports them: time to the
 * first token (from submission), time between a request's successive steps that gave it tokens, and
 * end to end; and the answers ended, by finish reason. Observed on the engine thread as outputs are
 * published; read from any thread.
 */
public final class RequestLatencies {

    /** Seconds: from 1 ms to about 40 minutes, as vLLM's buckets span. */
    static final double[] FIRST_TOKEN_BUCKETS = {0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0,
            2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0};
    static final double[] INTER_TOKEN_BUCKETS = {0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5,
            5.0, 7.5, 10.0, 20.0, 40.0, 80.0};
    static final double[] END_TO_END_BUCKETS = {0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0,
            60.0, 120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0};

    private final Histogram firstToken = new Histogram(FIRST_TOKEN_BUCKETS);
    private final Histogram interToken = new Histogram(INTER_TOKEN_BUCKETS);
    private final Histogram endToEnd = new Histogram(END_TO_END_BUCKETS);
    private final Map<String, AtomicLong> ended = new ConcurrentHashMap<>();

    /** A histogram's state at one moment: counts per bucket (not cumulative; the last is above every bound). */
    public record Snapshot(double[] upperBounds, long[] counts, double sum, long count) {
    }

    public Snapshot timeToFirstToken() {
        return firstToken.snapshot();
    }

    public Snapshot interTokenLatency() {
        return interToken.snapshot();
    }

    public Snapshot endToEnd() {
        return endToEnd.snapshot();
    }

    /**
     * Answers ended so far, by finish reason ("stop", "length", "abort"; sorted): a request of n answers
     * counts n times, each by its own reason, as vLLM counts the requests it splits parallel sampling
     * into; {@link #endToEnd} likewise holds each answer's time to its end.
     */
    public Map<String, Long> endedByReason() {
        Map<String, Long> counts = new TreeMap<>();
        ended.forEach((reason, n) -> counts.put(reason, n.get()));
        return counts;
    }

    /**
     * Observes an output published for a request submitted at {@code stream.submittedNanos()}:
     * its first tokens, a later step's tokens, or its end. Engine thread.
     *
     * @param delta whether {@code output} holds only what is new (its tokens add to those seen), not all so far
     */
    void observe(RequestStream stream, RequestOutput output, boolean delta, long now) {
        int tokens = delta ? stream.tokensSeen : 0;
        for (CompletionOutput c : output.outputs()) tokens += c.tokenIds().size();
        if (tokens > stream.tokensSeen) {
            double seconds = (now - (stream.tokensSeen == 0 ? stream.submittedNanos() : stream.lastTokenNanos)) / 1e9;
            (stream.tokensSeen == 0 ? firstToken : interToken).observe(seconds);
            stream.tokensSeen = tokens;
            stream.lastTokenNanos = now;
        }
        // Each answer's end once, when it is first seen ended (n answers end at their own steps).
        double sinceSubmitted = (now - stream.submittedNanos()) / 1e9;
        for (CompletionOutput answer : output.outputs()) {
            if (answer.finishReason() == null && !output.finished() || stream.answersEnded.get(answer.index())) continue;
            stream.answersEnded.set(answer.index());
            endToEnd.observe(sinceSubmitted);
            countEnded(answer.finishReason() == null ? "unknown" : answer.finishReason().toString());
        }
        if (output.finished() && output.outputs().isEmpty() && stream.answersEnded.isEmpty()) {
            stream.answersEnded.set(0);
            endToEnd.observe(sinceSubmitted);
            countEnded("unknown");
        }
    }

    private void countEnded(String reason) {
        ended.computeIfAbsent(reason, r -> new AtomicLong()).incrementAndGet();
    }

    private static final class Histogram {
        private final double[] bounds;
        private final AtomicLongArray counts;
        private final DoubleAdder sum = new DoubleAdder();

        Histogram(double[] bounds) {
            this.bounds = bounds;
            this.counts = new AtomicLongArray(bounds.length + 1);
        }

        void observe(double value) {
            int bucket = Arrays.binarySearch(bounds, value);
            counts.incrementAndGet(bucket >= 0 ? bucket : -bucket - 1);
            sum.add(value);
        }

        /** The count is the buckets' total, so that a scrape's count and its +Inf bucket always agree. */
        Snapshot snapshot() {
            long[] copy = new long[counts.length()];
            long total = 0;
            for (int i = 0; i < copy.length; i++) total += copy[i] = counts.get(i);
            return new Snapshot(bounds.clone(), copy, sum.sum(), total);
        }
    }
}
