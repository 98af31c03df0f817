package dev.jvllm.cuda;

/**
 * A device buffer kept across layers and passes (all on one stream), made at least {@code leastBytes}
 * and grown to at least twice its size when a pass needs more. A replaced buffer is freed once
 * unreachable, so a CUDA graph captured on it keeps it; growing is allowed while a graph is captured
 * (cuMemAlloc is not stream work) and aborts a replay ({@link DeviceMemory#allocateKept}): every graph
 * captured on the old buffer is then captured again, which the least size makes rare (a batch of 64
 * had grown paged_decode's partials from a single sequence's, so each one-sequence graph of BART was
 * captured twice).
 */
final class KeptBuffer {

    private final DeviceMemory memory;
    private final long leastBytes;
    private DeviceBuffer buffer;

    KeptBuffer(DeviceMemory memory, long leastBytes) {
        this.memory = memory;
        this.leastBytes = leastBytes;
    }

    /** The buffer, of at least {@code bytes}. */
    DeviceBuffer atLeast(long bytes) {
        if (buffer == null || buffer.bytes() < bytes) {
            buffer = memory.allocateKept(Math.max(bytes, buffer == null ? leastBytes : 2 * buffer.bytes()));
        }
        return buffer;
    }
}
