package dev.jvllm.cuda;

import java.lang.ref.Cleaner;
import java.util.Map;
import java.util.Queue;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The device memory of one backend. {@link Kind#PERSISTENT} memory (weights, constants, the KV
 * cache) comes from {@code cuMemAlloc}; {@link Kind#STREAM_ORDERED} memory (activations, index
 * tensors, per-batch metadata) from the stream-ordered pool, which makes the many small, short-lived
 * allocations of a forward pass cheap.
 *
 * <p>The {@link dev.jvllm.spi.Backend} interface has no way to free a tensor, so a buffer is freed
 * once nothing references it: a {@link Cleaner} queues it, and the backend's thread frees the
 * queued buffers at its next allocation (freeing must happen with the context current, and a
 * stream-ordered free after the work already queued that may still read it). {@link #close()}
 * frees everything left.
 */
final class DeviceMemory implements AutoCloseable {

    enum Kind { PERSISTENT, STREAM_ORDERED }

    private static final Cleaner CLEANER = Cleaner.create();

    private final CudaContext context;
    private final AtomicLong nextId = new AtomicLong();
    private final Map<Long, Allocation> live = new ConcurrentHashMap<>();
    private final Queue<Long> unreachable = new ConcurrentLinkedQueue<>();

    private record Allocation(long address, long bytes, Kind kind) {
    }

    DeviceMemory(CudaContext context) {
        this.context = context;
    }

    /**
     * Set while a forward pass is captured into a CUDA graph or replayed: the pass may not allocate
     * (the graph would use memory gone by its next launch), and nothing is freed, since a free on
     * the stream would be recorded too.
     */
    private boolean recording;
    /** Set while a pass is replayed: it launches nothing, so a kept buffer it grew would differ from the graph's. */
    private boolean replaying;

    void setRecording(boolean recording, boolean replaying) {
        this.recording = recording;
        this.replaying = replaying;
    }

    DeviceBuffer allocate(long bytes, Kind kind) {
        if (recording) {
            throw new GraphRecording.Abort("the pass allocates " + bytes + " bytes of device memory",
                    GraphRecording.Abort.Remedy.RETRY);
        }
        context.makeCurrent();
        releaseUnreachable();
        return allocateNow(bytes, kind);
    }

    /**
     * Persistent memory for a buffer the backend keeps across passes (decode partials), allowed
     * while a graph is captured: cuMemAlloc is not stream work, so the capture does not record it.
     */
    DeviceBuffer allocateKept(long bytes) {
        if (replaying) {
            throw new GraphRecording.Abort("a kept buffer of the pass grows to " + bytes + " bytes",
                    GraphRecording.Abort.Remedy.RETRY);
        }
        context.makeCurrent();
        return allocateNow(bytes, Kind.PERSISTENT);
    }

    private DeviceBuffer allocateNow(long bytes, Kind kind) {
        // A zero-byte request still gets a distinct, valid pointer.
        long size = Math.max(bytes, 16);
        long address = kind == Kind.PERSISTENT
                ? context.driver.allocate(size) : context.driver.allocateAsync(size, context.stream);
        long id = nextId.incrementAndGet();
        live.put(id, new Allocation(address, size, kind));
        DeviceBuffer buffer = new DeviceBuffer(id, address, bytes);
        Queue<Long> queue = unreachable;
        CLEANER.register(buffer, () -> queue.add(id));
        return buffer;
    }

    /** Frees a buffer now; its views must not be used after. */
    void free(DeviceBuffer buffer) {
        if (!live.containsKey(buffer.id())) return;
        context.makeCurrent();
        release(buffer.id());
    }

    /** Bytes allocated and not yet freed. */
    long liveBytes() {
        return live.values().stream().mapToLong(Allocation::bytes).sum();
    }

    void releaseUnreachable() {
        if (recording) return;
        Long id;
        while ((id = unreachable.poll()) != null) {
            release(id);
        }
    }

    private void release(long id) {
        Allocation allocation = live.remove(id);
        if (allocation == null) return;
        if (allocation.kind() == Kind.PERSISTENT) {
            context.driver.free(allocation.address());
        } else {
            context.driver.freeAsync(allocation.address(), context.stream);
        }
    }

    @Override
    public void close() {
        context.makeCurrent();
        unreachable.clear();
        for (Long id : live.keySet().toArray(Long[]::new)) {
            release(id);
        }
    }
}
