package dev.jvllm.cpu;

import dev.jvllm.JvllmException;
import dev.jvllm.spi.KvCache;
import dev.jvllm.spi.NativeMemory;
import dev.jvllm.spi.KvCacheSpec;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.management.ManagementFactory;

/**
 * The paged KV cache in native memory: per layer a key pool and a value pool of
 * {@code numBlocks × blockSize} slots, each slot {@code kvHeads × headDim} float32 values; or, for a
 * {@link KvCacheSpec.Layout#LATENT} spec, only the one pool of latent rows (held as the "keys").
 * Slot {@code s} of a pool is its row {@code s}.
 */
final class CpuKvCache implements KvCache {

    private final KvCacheSpec spec;
    private final Arena arena;
    private final MemorySegment[] keys;
    private final MemorySegment[] values;
    private final int slots;
    private final int slotWidth;
    private boolean closed;

    private CpuKvCache(KvCacheSpec spec, Arena arena, MemorySegment[] keys, MemorySegment[] values) {
        this.spec = spec;
        this.arena = arena;
        this.keys = keys;
        this.values = values;
        this.slots = spec.numBlocks() * spec.blockSize();
        this.slotWidth = spec.slotWidth();
    }

    /** Allocates the pools, zeroed, or explains why they cannot be had. */
    static CpuKvCache allocate(KvCacheSpec spec) {
        long poolBytes;
        long totalBytes;
        try {
            long slotCount = Math.multiplyExact((long) spec.numBlocks(), spec.blockSize());
            if (slotCount > Integer.MAX_VALUE) {
                throw new ArithmeticException("more than 2^31 slots");
            }
            long slotBytes = Math.multiplyExact(Math.multiplyExact((long) spec.kvHeads(), spec.headDim()), Float.BYTES);
            poolBytes = Math.multiplyExact(slotCount, slotBytes);
            totalBytes = Math.multiplyExact(poolBytes, (long) spec.poolsPerLayer() * spec.layers());
        } catch (ArithmeticException overflow) {
            throw new JvllmException("KV cache " + spec + " is too large to address (" + overflow.getMessage() + ")");
        }
        long physical = physicalMemoryBytes();
        if (physical > 0 && totalBytes > physical) {
            throw new JvllmException("KV cache " + spec + " needs " + mebibytes(totalBytes)
                    + " MiB but this machine has " + mebibytes(physical) + " MiB of memory; use fewer blocks");
        }
        Arena arena = Arena.ofShared();
        try {
            // One block for all pools, zeroed lazily: its pages cost memory only once a KV block is used.
            long stride = (poolBytes + 63) & -64L;
            MemorySegment all = NativeMemory.zeroed(stride * spec.poolsPerLayer() * spec.layers(), 64, arena);
            MemorySegment[] keys = new MemorySegment[spec.layers()];
            MemorySegment[] values = new MemorySegment[spec.layers()];
            long offset = 0;
            for (int layer = 0; layer < spec.layers(); layer++) {
                keys[layer] = all.asSlice(offset, poolBytes);
                offset += stride;
                if (spec.poolsPerLayer() == 2) {
                    values[layer] = all.asSlice(offset, poolBytes);
                    offset += stride;
                }
            }
            return new CpuKvCache(spec, arena, keys, values);
        } catch (OutOfMemoryError | IllegalArgumentException e) {
            arena.close();
            throw new JvllmException("cannot allocate KV cache " + spec + " of " + mebibytes(totalBytes)
                    + " MiB of native memory: " + e.getMessage(), e);
        }
    }

    private static long physicalMemoryBytes() {
        try {
            if (ManagementFactory.getOperatingSystemMXBean() instanceof com.sun.management.OperatingSystemMXBean os) {
                return os.getTotalMemorySize();
            }
        } catch (LinkageError | RuntimeException unavailable) {
            // jdk.management is optional; without it only the allocation itself can refuse
        }
        return -1;
    }

    private static long mebibytes(long bytes) {
        return bytes >> 20;
    }

    @Override
    public KvCacheSpec spec() {
        return spec;
    }

    MemorySegment keys(int layer) {
        return keys[layer];
    }

    /** The value pool; null in a latent cache, whose rows are read through {@link #keys}. */
    MemorySegment values(int layer) {
        return values[layer];
    }

    /** Token slots per layer. */
    int slots() {
        return slots;
    }

    /** Floats per slot: {@code kvHeads × headDim}. */
    int slotWidth() {
        return slotWidth;
    }

    @Override
    public synchronized void close() {
        if (!closed) {
            closed = true;
            arena.close();
        }
    }
}
