package dev.jvllm.spi;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

/**
 * Native memory from the C library, freed when its arena closes, for what {@link Arena#allocate}
 * would zero on one thread before anything is written: a pass of its own over gigabytes (2 GiB took
 * 0.82-0.92 s on this project's 2-core machine, against 0.3 s for a write over it afterwards).
 * {@link #zeroed} is {@code calloc}, whose large blocks are fresh pages the operating system zeroes on
 * first touch (a CPU KV cache costs nothing until its blocks are used); {@link #unzeroed} is
 * {@code malloc}, for decoded and repacked weights whose every byte is written before it is read.
 *
 * <p>Calling C needs native access ({@code --enable-native-access=ALL-UNNAMED}, as the {@code jvllm}
 * launcher and the tests run; without it the JVM warns, or refuses under
 * {@code --illegal-native-access=deny}): where it is refused or there is no C library, both fall back
 * to {@link Arena#allocate}.
 */
public final class NativeMemory {

    private static final MethodHandle CALLOC, MALLOC, FREE;

    static {
        MethodHandle calloc = null, malloc = null, free = null;
        try {
            Linker linker = Linker.nativeLinker();
            var libc = linker.defaultLookup();
            calloc = linker.downcallHandle(libc.find("calloc").orElseThrow(), FunctionDescriptor.of(ADDRESS, JAVA_LONG, JAVA_LONG));
            malloc = linker.downcallHandle(libc.find("malloc").orElseThrow(), FunctionDescriptor.of(ADDRESS, JAVA_LONG));
            free = linker.downcallHandle(libc.find("free").orElseThrow(), FunctionDescriptor.ofVoid(ADDRESS));
        } catch (RuntimeException | LinkageError unavailable) {
            calloc = malloc = null;  // IllegalCallerException under --illegal-native-access=deny, or no C library
        }
        CALLOC = calloc;
        MALLOC = malloc;
        FREE = free;
    }

    private NativeMemory() {
    }

    /** Whether the memory comes from the C library in this process (else from {@link Arena#allocate}). */
    public static boolean fromC() {
        return MALLOC != null;
    }

    /**
     * {@code bytes} of zeroed memory aligned to {@code alignment} (a power of two), valid until
     * {@code arena} closes.
     *
     * @throws OutOfMemoryError when the memory cannot be had
     */
    public static MemorySegment zeroed(long bytes, long alignment, Arena arena) {
        return allocate(CALLOC, bytes, alignment, arena);
    }

    /**
     * {@link #zeroed}, but its contents are whatever the memory held: for buffers whose every byte
     * is written before it is read.
     */
    public static MemorySegment unzeroed(long bytes, long alignment, Arena arena) {
        return allocate(MALLOC, bytes, alignment, arena);
    }

    private static MemorySegment allocate(MethodHandle function, long bytes, long alignment, Arena arena) {
        if (function == null || bytes == 0) return arena.allocate(bytes, alignment);
        long padded = Math.addExact(bytes, alignment - 1);
        MemorySegment block;
        try {
            block = function == CALLOC ? (MemorySegment) CALLOC.invokeExact(1L, padded) : (MemorySegment) MALLOC.invokeExact(padded);
        } catch (Throwable t) {
            throw new IllegalStateException("native allocation failed", t);
        }
        if (block.address() == 0) throw new OutOfMemoryError("the C library gave no block of " + padded + " bytes");
        MemorySegment owned = block.reinterpret(padded, arena, NativeMemory::free);
        return owned.asSlice(-block.address() & (alignment - 1), bytes);
    }

    private static void free(MemorySegment block) {
        try {
            FREE.invokeExact(block);
        } catch (Throwable t) {
            throw new IllegalStateException("free failed", t);
        }
    }
}
