package dev.jvllm.cuda;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.lang.foreign.MemorySegment;
import java.util.HashMap;
import java.util.Map;

/**
 * The CUDA graphs of one backend, one per pass shape (e.g. a decode batch padded to 8 sequences
 * with block tables of 64 entries), made on a shape's first pass and launched on its later ones:
 * a graph launch queues the hundreds of kernels of a forward pass in one call, where launching
 * them one by one costs the host several microseconds each.
 *
 * <p>A shape whose capture fails (its pass allocated new activation buffers, or outgrew the
 * graph's transient area) is tried again on a later pass, up to {@link #MAX_FAILURES} times in a
 * row (a matching replay starts the count again); a
 * model whose pass reads results back mid-pass (host-side routing) is never captured again.
 */
final class CudaGraphs implements AutoCloseable {

    private static final Logger log = LoggerFactory.getLogger(CudaGraphs.class);

    static final int MAX_FAILURES = 3;
    private static final long FIRST_AREA_BYTES = 256L << 10;

    /** A graph ready to launch; {@code launched} is recorded after each launch. */
    record Graph(MemorySegment executable, GraphRecording recording, MemorySegment launched) {
    }

    private final CudaContext context;
    private final DeviceMemory memory;
    private final Map<Object, Graph> graphs = new HashMap<>();
    private final Map<Object, Integer> failures = new HashMap<>();
    private final Map<Object, Long> areaBytes = new HashMap<>();
    /** Why no pass of this backend's model can be captured, once that is known. */
    private String unsupported;
    private long captureNanos;
    private long launches;

    CudaGraphs(CudaContext context, DeviceMemory memory) {
        this.context = context;
        this.memory = memory;
    }

    Graph get(Object shape) {
        return graphs.get(shape);
    }

    /** Whether a pass of this shape should be captured now. */
    boolean mayCapture(Object shape) {
        return unsupported == null && failures.getOrDefault(shape, 0) < MAX_FAILURES;
    }

    /** A new recording for a capture of {@code shape}: its transient device area and page-locked upload area. */
    GraphRecording startCapture(Object shape) {
        long bytes = areaBytes.getOrDefault(shape, FIRST_AREA_BYTES);
        DeviceBuffer deviceArea = memory.allocate(bytes, DeviceMemory.Kind.PERSISTENT);
        MemorySegment hostArea = context.driver.allocateHost(bytes);
        captureNanos = System.nanoTime();
        return new GraphRecording(deviceArea, hostArea);
    }

    /** Makes the executable graph of a finished capture and keeps it for {@code shape}. */
    Graph finishCapture(Object shape, GraphRecording recording, MemorySegment graph) {
        MemorySegment executable;
        try {
            executable = context.driver.instantiate(graph);
        } finally {
            context.driver.destroyGraph(graph);
        }
        Graph made = new Graph(executable, recording, context.driver.createEvent());
        graphs.put(shape, made);
        log.debug("captured a CUDA graph for {} in {} ms ({} graphs; {})", shape,
                (System.nanoTime() - captureNanos) / 1_000_000, graphs.size(), recording.uploadsPlace());
        return made;
    }

    /** Notes a failed capture; its areas are given back. */
    void captureFailed(Object shape, GraphRecording recording, RuntimeException reason) {
        context.driver.freeHost(recording.hostArea());
        noteFailure(shape, reason);
    }

    /**
     * Notes a replay that matched its pass: the shape's earlier failures are forgotten, so that a shape
     * that works is not given up after a few buffers grew (each growth fails every graph that holds
     * the old buffer once) in a long run.
     */
    void replayed(Object shape) {
        failures.remove(shape);
    }

    /** Forgets a graph whose replay did not match its pass. */
    void drop(Object shape, RuntimeException reason) {
        Graph graph = graphs.remove(shape);
        if (graph != null) release(graph);
        noteFailure(shape, reason);
    }

    private void noteFailure(Object shape, RuntimeException reason) {
        int count = failures.merge(shape, 1, Integer::sum);
        GraphRecording.Abort.Remedy remedy = reason instanceof GraphRecording.Abort abort ? abort.remedy
                : GraphRecording.Abort.Remedy.NEVER;
        if (remedy == GraphRecording.Abort.Remedy.NEVER) {
            unsupported = String.valueOf(reason.getMessage());
            log.info("this model's forward pass cannot run as a CUDA graph ({}); it runs eagerly", unsupported);
            return;
        }
        if (remedy == GraphRecording.Abort.Remedy.MORE_ROOM) {
            areaBytes.merge(shape, FIRST_AREA_BYTES * 4, (old, ignored) -> old * 4);
        }
        if (count >= MAX_FAILURES) {
            log.info("{} runs eagerly: its CUDA graph failed {} times, last because {}", shape, count, reason.getMessage());
        } else {
            log.debug("{} ran eagerly this time: {}", shape, reason.getMessage());
        }
    }

    /** Waits until the graph's last launch has finished, so that its upload area may be rewritten. */
    void awaitLastLaunch(Graph graph) {
        context.driver.waitFor(graph.launched());
    }

    void launch(Graph graph) {
        context.driver.launchGraph(graph.executable(), context.stream);
        context.driver.record(graph.launched(), context.stream);
        launches++;
    }

    int size() {
        return graphs.size();
    }

    long launches() {
        return launches;
    }

    private void release(Graph graph) {
        awaitLastLaunch(graph);
        context.driver.destroyExecutableGraph(graph.executable());
        context.driver.destroyEvent(graph.launched());
        context.driver.freeHost(graph.recording().hostArea());
    }

    @Override
    public void close() {
        for (Graph graph : graphs.values()) release(graph);
        graphs.clear();
    }
}
