package dev.jvllm.cuda;

/**
 * A device buffer kept across layers and passes (all on one stream), grown to at least twice its
 * size when a pass needs more. A replaced buffer is freed once unreachable, so a CUDA graph
 * captured on it keeps it; growing is allowed while a graph is captured (cuMemAlloc is not stream
 * work) and aborts a replay ({@link DeviceMemory#allocateKept}).
 */
final class KeptBuffer {

    private final DeviceMemory memory;
    private DeviceBuffer buffer;

    KeptBuffer(DeviceMemory memory) {
        this.memory = memory;
    }

    /** The buffer, of at least {@code bytes}. */
    DeviceBuffer atLeast(long bytes) {
        if (buffer == null || buffer.bytes() < bytes) {
            buffer = memory.allocateKept(buffer == null ? bytes : Math.max(bytes, 2 * buffer.bytes()));
        }
        return buffer;
    }
}
