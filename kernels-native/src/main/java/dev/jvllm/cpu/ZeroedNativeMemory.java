package dev.jvllm.cpu;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;

/**
 * Zeroed native memory from C's {@code calloc}, freed when its arena closes. Unlike
 * {@link Arena#allocate}, which writes zeros over every byte, {@code calloc} of a large block maps
 * fresh pages that the operating system zeroes on first touch: a KV cache of a gigabyte costs
 * nothing until its blocks are used, neither time at load nor resident memory.
 *
 * <p>Calling C needs native access ({@code --enable-native-access=ALL-UNNAMED}; without it the JVM
 * warns, or refuses under {@code --illegal-native-access=deny}): where it is refused or there is
 * no {@code calloc}, {@link #allocate} falls back to {@link Arena#allocate}.
 */
final class ZeroedNativeMemory {

    private static final MethodHandle CALLOC;
    private static final MethodHandle FREE;

    static {
        MethodHandle calloc = null, free = null;
        try {
            Linker linker = Linker.nativeLinker();
            calloc = linker.downcallHandle(linker.defaultLookup().find("calloc").orElseThrow(),
                    FunctionDescriptor.of(ValueLayout.ADDRESS, ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG));
            free = linker.downcallHandle(linker.defaultLookup().find("free").orElseThrow(),
                    FunctionDescriptor.ofVoid(ValueLayout.ADDRESS));
        } catch (RuntimeException | LinkageError unavailable) {
            calloc = null; // IllegalCallerException under --illegal-native-access=deny, or no C library
        }
        CALLOC = calloc;
        FREE = free;
    }

    private ZeroedNativeMemory() {
    }

    /**
     * {@code bytes} of zeroed memory aligned to {@code alignment} (a power of two), valid until
     * {@code arena} closes.
     *
     * @throws OutOfMemoryError when the memory cannot be had
     */
    static MemorySegment allocate(long bytes, long alignment, Arena arena) {
        if (CALLOC == null || bytes == 0) {
            return arena.allocate(bytes, alignment);
        }
        long padded = Math.addExact(bytes, alignment - 1);
        MemorySegment block;
        try {
            block = (MemorySegment) CALLOC.invokeExact(1L, padded);
        } catch (Throwable t) {
            throw new IllegalStateException("calloc failed", t);
        }
        if (block.address() == 0) {
            throw new OutOfMemoryError("calloc of " + padded + " bytes returned null");
        }
        MemorySegment owned = block.reinterpret(padded, arena, ZeroedNativeMemory::free);
        long skip = -block.address() & (alignment - 1);
        return owned.asSlice(skip, bytes);
    }

    private static void free(MemorySegment block) {
        try {
            FREE.invokeExact(block);
        } catch (Throwable t) {
            throw new IllegalStateException("free failed", t);
        }
    }
}
