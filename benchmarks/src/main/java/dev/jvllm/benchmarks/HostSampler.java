package dev.jvllm.benchmarks;

import java.util.Comparator;
import java.util.HashMap;
import java.util.HashSet;
import java.util.Map;
import java.util.Set;

import static dev.jvllm.benchmarks.JsonLines.emit;

/**
 * Where one thread spends its time, by sampling its stack every {@code intervalMicros} from a
 * daemon thread: a profiler for the host side of a GPU run, whose Java runtime (tools/gpu's jlink
 * image) has no JFR. Each method of the project ({@code dev.jvllm}) counts once a sample where it is
 * on the stack (inclusive) and once where it is the innermost project frame (self); {@link #close}
 * emits the most frequent as {@code host_samples} lines. Stacks are taken at safepoints, so short
 * methods between them are under-counted: a guide to where to look, not a measure.
 */
final class HostSampler implements AutoCloseable {

    private static final String PROJECT = "dev.jvllm.";
    private static final int REPORTED = 25;

    private final String phase;
    private final Thread target;
    private final Thread sampler;
    private final Map<String, Integer> inclusive = new HashMap<>();
    private final Map<String, Integer> self = new HashMap<>();
    private volatile boolean running = true;
    private int samples;

    /** Starts sampling {@code target} (usually the caller's thread) for the phase named {@code phase}. */
    HostSampler(String phase, Thread target, long intervalMicros) {
        this.phase = phase;
        this.target = target;
        this.sampler = Thread.ofPlatform().daemon().name("host-sampler").start(() -> {
            while (running) {
                sample();
                java.util.concurrent.locks.LockSupport.parkNanos(intervalMicros * 1000);
            }
        });
    }

    private void sample() {
        StackTraceElement[] stack = target.getStackTrace();
        Set<String> seen = new HashSet<>();
        String innermost = null;
        for (StackTraceElement frame : stack) {
            if (!frame.getClassName().startsWith(PROJECT)) continue;
            String method = frame.getClassName().substring(PROJECT.length()) + "." + frame.getMethodName();
            if (innermost == null) innermost = method;
            if (seen.add(method)) inclusive.merge(method, 1, Integer::sum);
        }
        if (innermost == null) return;
        self.merge(innermost, 1, Integer::sum);
        samples++;
    }

    @Override
    public void close() {
        running = false;
        try {
            sampler.join();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        report("inclusive", inclusive);
        report("self", self);
    }

    private void report(String kind, Map<String, Integer> counts) {
        counts.entrySet().stream()
                .sorted(Map.Entry.<String, Integer>comparingByValue(Comparator.reverseOrder()))
                .limit(REPORTED)
                .forEach(e -> emit("host_samples", "phase", phase, "kind", kind, "method", e.getKey(), "samples", e.getValue(),
                        "share", Math.round(1000.0 * e.getValue() / Math.max(1, samples)) / 1000.0));
    }
}
