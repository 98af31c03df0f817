package dev.jvllm.weights;

import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Weights' unzeroed native memory: the size asked, aligned, holding what is written, gone with its arena. */
class UnzeroedMemoryTest {

    @Test
    void memoryHoldsWhatIsWrittenAndIsFreedWithItsArena() {
        // The tests run with --enable-native-access, as the jvllm launcher does: the memory comes from malloc.
        assertTrue(UnzeroedMemory.unzeroed(), "native access is enabled for the tests");
        MemorySegment kept;
        try (Arena arena = Arena.ofShared()) {
            MemorySegment segment = UnzeroedMemory.allocate(arena, 3 << 20);
            assertEquals(3 << 20, segment.byteSize());
            assertEquals(0, segment.address() % 16);
            for (long i = 0; i < segment.byteSize() / 4; i++) segment.setAtIndex(ValueLayout.JAVA_INT, i, (int) i * 31);
            for (long i = 0; i < segment.byteSize() / 4; i += 4099) assertEquals((int) i * 31, segment.getAtIndex(ValueLayout.JAVA_INT, i));
            assertEquals(0, UnzeroedMemory.allocate(arena, 0).byteSize());
            kept = segment;
        }
        assertFalse(kept.scope().isAlive());
        assertThrows(IllegalStateException.class, () -> kept.get(ValueLayout.JAVA_INT, 0));
    }
}
