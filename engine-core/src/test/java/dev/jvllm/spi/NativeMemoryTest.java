package dev.jvllm.spi;

import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Native memory from the C library: the size asked, aligned, zeroed where asked, holding what is written, gone with its arena. */
class NativeMemoryTest {

    @Test
    void memoryHoldsWhatIsWrittenAndIsFreedWithItsArena() {
        // The tests run with --enable-native-access, as the jvllm launcher does: the memory comes from C.
        assertTrue(NativeMemory.fromC(), "native access is enabled for the tests");
        MemorySegment kept;
        try (Arena arena = Arena.ofShared()) {
            MemorySegment zeroed = NativeMemory.zeroed(5 << 20, 64, arena);
            assertEquals(5 << 20, zeroed.byteSize());
            assertEquals(0, zeroed.address() % 64);
            for (long i = 0; i < zeroed.byteSize(); i += 4093) assertEquals(0, zeroed.get(ValueLayout.JAVA_BYTE, i));
            MemorySegment segment = NativeMemory.unzeroed(3 << 20, 16, arena);
            assertEquals(3 << 20, segment.byteSize());
            assertEquals(0, segment.address() % 16);
            for (long i = 0; i < segment.byteSize() / 4; i++) segment.setAtIndex(ValueLayout.JAVA_INT, i, (int) i * 31);
            for (long i = 0; i < segment.byteSize() / 4; i += 4099) assertEquals((int) i * 31, segment.getAtIndex(ValueLayout.JAVA_INT, i));
            assertEquals(0, NativeMemory.unzeroed(0, 16, arena).byteSize());
            kept = segment;
        }
        assertFalse(kept.scope().isAlive());
        assertThrows(IllegalStateException.class, () -> kept.get(ValueLayout.JAVA_INT, 0));
    }
}
