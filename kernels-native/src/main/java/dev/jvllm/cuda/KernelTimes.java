package dev.jvllm.cuda;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Device time per kernel (and per cuBLAS product shape) of eager launches, to see where a forward
 * pass spends its time at the real clocks and with warm caches, which a profiler replaying each
 * kernel does not give. On with {@code -Djvllm.cuda.kernelTimes=true}; each launch is then
 * bracketed by two stream events, which adds a little time between kernels. Kernels captured into
 * CUDA graphs are not timed one by one (use {@code enforceEager} for that); each graph launch is
 * timed as a whole. Off, it costs one branch a launch.
 * A benchmark calls {@link #reportAndReset} after each phase.
 */
public final class KernelTimes {

    private static final Logger log = LoggerFactory.getLogger(KernelTimes.class);
    static final boolean ENABLED = Boolean.getBoolean("jvllm.cuda.kernelTimes");
    /** Event pairs a stream holds before their times are read back. */
    private static final int PAIRS = 2048;

    private static final List<Timer> timers = new ArrayList<>();
    /** Per label: calls, milliseconds. */
    private static final Map<String, double[]> totals = new LinkedHashMap<>();

    private KernelTimes() {
    }

    /** Whether launches are being timed. */
    public static boolean enabled() {
        return ENABLED;
    }

    /**
     * Logs, and returns as text, the device time per label since the last call (largest first,
     * with its share, calls and mean), then starts over. Empty when timing is off.
     */
    public static synchronized String reportAndReset(String phase) {
        if (!ENABLED) return "";
        for (Timer timer : timers) timer.resolve();
        double all = totals.values().stream().mapToDouble(t -> t[1]).sum();
        StringBuilder text = new StringBuilder(String.format("kernel times, %s: %.3f ms in all%n", phase, all));
        totals.entrySet().stream().sorted((a, b) -> Double.compare(b.getValue()[1], a.getValue()[1])).forEach(e ->
                text.append(String.format("%9.3f ms %5.1f%% %7d calls %9.2f us  %s%n", e.getValue()[1],
                        100 * e.getValue()[1] / all, (long) e.getValue()[0], 1e3 * e.getValue()[1] / e.getValue()[0],
                        e.getKey())));
        totals.clear();
        log.info("{}", text);
        return text.toString();
    }

    private static synchronized void add(String label, double millis) {
        double[] total = totals.computeIfAbsent(label, l -> new double[2]);
        total[0]++;
        total[1] += millis;
    }

    /** One stream's pending event pairs. */
    static final class Timer {
        private final CudaContext context;
        private final MemorySegment stream;
        private final MemorySegment[] starts = new MemorySegment[PAIRS];
        private final MemorySegment[] ends = new MemorySegment[PAIRS];
        private final String[] labels = new String[PAIRS];
        private int pending;

        Timer(CudaContext context, MemorySegment stream) {
            this.context = context;
            this.stream = stream;
            synchronized (KernelTimes.class) {
                timers.add(this);
            }
        }

        synchronized void begin(String label) {
            if (pending == PAIRS) resolve();
            if (starts[pending] == null) {
                starts[pending] = context.driver.createEvent();
                ends[pending] = context.driver.createEvent();
            }
            labels[pending] = label;
            context.driver.record(starts[pending], stream);
        }

        synchronized void end() {
            context.driver.record(ends[pending], stream);
            pending++;
        }

        /** Waits for the pending pairs and adds their times to the totals. */
        synchronized void resolve() {
            if (pending == 0) return;
            context.makeCurrent();
            for (int i = 0; i < pending; i++) add(labels[i], context.driver.elapsedMillis(starts[i], ends[i]));
            pending = 0;
        }

        synchronized void close() {
            resolve();
            for (int i = 0; i < PAIRS && starts[i] != null; i++) {
                context.driver.destroyEvent(starts[i]);
                context.driver.destroyEvent(ends[i]);
            }
            synchronized (KernelTimes.class) {
                timers.remove(this);
            }
        }
    }
}
