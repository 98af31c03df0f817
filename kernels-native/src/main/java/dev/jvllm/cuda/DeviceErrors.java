package dev.jvllm.cuda;

import dev.jvllm.JvllmException;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

import static java.lang.foreign.ValueLayout.JAVA_INT;

/**
 * Out-of-range indices met by kernels (a token id past the vocabulary, a position past the rotary
 * table). Kernels cannot throw, so the first one records {kind, value, at, limit} in a small
 * device buffer (common.cuh's report_error); the host reads it whenever it waits for the stream
 * anyway and turns it into an exception there.
 */
final class DeviceErrors {

    private static final int ROW_INDEX = 1;
    private static final int POSITION = 2;

    private final CudaContext context;
    private final DeviceBuffer buffer;

    DeviceErrors(CudaContext context, DeviceMemory memory) {
        this.context = context;
        this.buffer = memory.allocate(4 * Integer.BYTES, DeviceMemory.Kind.PERSISTENT);
        context.driver.fill(buffer.address(), (byte) 0, buffer.bytes(), context.stream);
    }

    DeviceBuffer buffer() {
        return buffer;
    }

    /** Waits for the stream; throws if a kernel recorded an error since the last check. */
    void synchronizeAndCheck() {
        context.makeCurrent();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment host = arena.allocate(buffer.bytes(), 16);
            queueCopy(host);
            context.driver.synchronize(context.stream);
            check(host);
        }
    }

    /** Bytes {@link #queueCopy} writes. */
    long bytes() {
        return buffer.bytes();
    }

    /** Queues a copy of the recorded error into {@code host} (page-locked, {@link #bytes} long), for {@link #check}. */
    void queueCopy(MemorySegment host) {
        context.driver.copyToHost(host, buffer.address(), buffer.bytes(), context.stream);
    }

    /** Throws the error a finished {@link #queueCopy} found, if any, and clears it on the device. */
    void check(MemorySegment host) {
        int kind = host.getAtIndex(JAVA_INT, 0);
        if (kind == 0) return;
        context.driver.fill(buffer.address(), (byte) 0, buffer.bytes(), context.stream);
        int value = host.getAtIndex(JAVA_INT, 1), at = host.getAtIndex(JAVA_INT, 2), limit = host.getAtIndex(JAVA_INT, 3);
        throw switch (kind) {
            case ROW_INDEX -> new IndexOutOfBoundsException("embedding/gatherRows: index " + value + " at " + at
                    + " is outside the " + limit + " rows of the table");
            case POSITION -> new IndexOutOfBoundsException("rotary: position " + value + " of token " + at
                    + " is outside the " + limit + " rows of the cos/sin table");
            default -> new JvllmException("a CUDA kernel reported error " + kind);
        };
    }
}
