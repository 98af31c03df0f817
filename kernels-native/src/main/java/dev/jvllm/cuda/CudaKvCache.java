package dev.jvllm.cuda;

import dev.jvllm.spi.KvCache;
import dev.jvllm.spi.KvCacheSpec;
import dev.jvllm.weights.DType;

/**
 * The paged KV cache in one device allocation: for each layer a key pool then a value pool of
 * {@code numBlocks × blockSize} slots, each slot {@code kvHeads × headDim} elements of
 * {@code dtype} (a {@link KvCacheSpec.Layout#LATENT} spec has only the first pool per layer).
 * Slot {@code s} of a pool is its row {@code s}.
 */
final class CudaKvCache implements KvCache {

    private final KvCacheSpec spec;
    private final DType dtype;
    private final DeviceMemory memory;
    private final DeviceBuffer storage;
    private final long poolBytes;
    private boolean closed;

    CudaKvCache(KvCacheSpec spec, DType dtype, DeviceMemory memory, DeviceBuffer storage, long poolBytes) {
        this.spec = spec;
        this.dtype = dtype;
        this.memory = memory;
        this.storage = storage;
        this.poolBytes = poolBytes;
    }

    @Override
    public KvCacheSpec spec() {
        return spec;
    }

    DType dtype() {
        return dtype;
    }

    long keys(int layer) {
        return storage.address() + (long) spec.poolsPerLayer() * layer * poolBytes;
    }

    long values(int layer) {
        if (spec.poolsPerLayer() != 2) {
            throw new IllegalStateException("a latent KV cache has no value pool");
        }
        return storage.address() + (2L * layer + 1) * poolBytes;
    }

    /** Token slots per layer. */
    long slots() {
        return (long) spec.numBlocks() * spec.blockSize();
    }

    @Override
    public synchronized void close() {
        if (!closed) {
            closed = true;
            memory.free(storage);
        }
    }

    @Override
    public String toString() {
        return "CUDA KV cache " + spec + " of " + dtype;
    }
}
