package dev.jvllm.weights;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

/**
 * Native memory that is not zeroed first, for decoded and repacked weights, whose every byte is
 * written before it is read. {@link Arena#allocate} zeroes what it gives: on one thread, a pass of its
 * own over gigabytes (2 GiB took 0.82-0.92 s on this project's 2-core machine, against 0.3 s for a
 * write over it afterwards) before the parallel decode touches a page. Here the C library's
 * {@code malloc}, whose large blocks the operating system maps in as the decode first writes them.
 * Only where this module may call native code ({@code --enable-native-access}, as the {@code jvllm}
 * launcher and the tests run); elsewhere {@link Arena#allocate}, so that loading never prints the
 * JDK's restricted-method warning.
 */
final class UnzeroedMemory {

    private static final MethodHandle MALLOC, FREE;

    static {
        MethodHandle malloc = null, free = null;
        if (UnzeroedMemory.class.getModule().isNativeAccessEnabled()) {
            try {
                Linker linker = Linker.nativeLinker();
                var libc = linker.defaultLookup();
                malloc = linker.downcallHandle(libc.find("malloc").orElseThrow(), FunctionDescriptor.of(ADDRESS, JAVA_LONG));
                free = linker.downcallHandle(libc.find("free").orElseThrow(), FunctionDescriptor.ofVoid(ADDRESS));
            } catch (RuntimeException unavailable) {
                malloc = free = null;
            }
        }
        MALLOC = malloc;
        FREE = free;
    }

    private UnzeroedMemory() {
    }

    /** Whether allocations come unzeroed from {@code malloc} in this process (else zeroed, from the arena). */
    static boolean unzeroed() {
        return MALLOC != null;
    }

    /**
     * {@code bytes} of native memory, 16-byte aligned, freed when {@code arena} closes; not zeroed
     * where {@link #unzeroed()}.
     *
     * @throws OutOfMemoryError where the memory cannot be had
     */
    static MemorySegment allocate(Arena arena, long bytes) {
        if (MALLOC == null || bytes == 0) return arena.allocate(bytes, 16);
        MemorySegment block;
        try {
            block = (MemorySegment) MALLOC.invokeExact(bytes);
        } catch (Throwable e) {
            throw new IllegalStateException("malloc failed", e);
        }
        if (block.equals(MemorySegment.NULL)) throw new OutOfMemoryError("cannot allocate " + bytes + " bytes of native memory for weights");
        if (block.address() % 16 != 0) {
            free(block);
            return arena.allocate(bytes, 16);
        }
        return block.reinterpret(bytes, arena, UnzeroedMemory::free);
    }

    private static void free(MemorySegment block) {
        try {
            FREE.invokeExact(block);
        } catch (Throwable e) {
            throw new IllegalStateException("free failed", e);
        }
    }
}
