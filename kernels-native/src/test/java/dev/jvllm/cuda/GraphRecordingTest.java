package dev.jvllm.cuda;

import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;

import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The bookkeeping that decides whether a CUDA graph may be replayed for a pass (no GPU needed):
 * a replay must make the captured calls in order with the same values, gets the captured
 * transient buffers, and writes its uploads into the captured page-locked slots; anything else
 * aborts it, so that the pass runs eagerly instead of replaying stale work.
 */
class GraphRecordingTest {

    private static final long DEVICE_BASE = 0x7000_0000L;

    private final Arena arena = Arena.ofAuto();

    private GraphRecording recording(long deviceBytes, long hostBytes) {
        return new GraphRecording(new DeviceBuffer(1, DEVICE_BASE, deviceBytes), arena.allocate(hostBytes, 16));
    }

    private MemorySegment arguments(long... values) {
        MemorySegment segment = arena.allocate(8L * values.length, 8);
        for (int i = 0; i < values.length; i++) segment.setAtIndex(JAVA_LONG, i, values[i]);
        return segment;
    }

    /** What a small pass does: upload ids, launch a kernel on them, run a product. */
    private static long pass(GraphRecording r, int[] ids, MemorySegment launchArguments) {
        DeviceBuffer buffer = r.allocate((long) ids.length * Integer.BYTES);
        r.upload(MemorySegment.ofArray(ids), buffer.address(), (long) ids.length * Integer.BYTES);
        r.launch(3, 64, 1, 1, 128, 0L, launchArguments, 2);
        r.product(1, 4096, 6144, 0x1000, buffer.address(), 0x2000);
        return buffer.address();
    }

    @Test
    void aReplayOfTheSameCallsGetsTheCapturedBuffersAndWritesItsNewValuesIntoTheSlots() {
        GraphRecording r = recording(1 << 16, 1 << 16);
        long captured = pass(r, new int[]{5, 6, 7}, arguments(11, 12));
        assertFalse(r.replaying());
        r.startReplay(null);
        long replayed = pass(r, new int[]{8, 9, 10}, arguments(11, 12));
        r.finishReplay();
        assertEquals(captured, replayed, "the replay's transient buffer is the captured one");
        assertArrayEquals(new int[]{8, 9, 10}, r.hostArea().asSlice(0, 12).toArray(JAVA_INT),
                "the graph's copy now reads the replay's values");
    }

    @Test
    void launchesAreMadeWhenCapturingAndNotWhenReplaying() {
        GraphRecording r = recording(1 << 10, 1 << 10);
        assertTrue(r.launch(1, 2, 1, 1, 32, 0L, arguments(7), 1), "captured launches run (into the stream capture)");
        assertTrue(r.product(1, 2, 3), "captured products run");
        r.startReplay(null);
        assertFalse(r.launch(1, 2, 1, 1, 32, 0L, arguments(7), 1), "replayed launches are not made: the graph makes them");
        assertFalse(r.product(1, 2, 3));
        r.finishReplay();
    }

    @Test
    void aDifferentArgumentGridOrSizeAbortsTheReplay() {
        GraphRecording r = recording(1 << 16, 1 << 16);
        pass(r, new int[]{1, 2}, arguments(11, 12));
        r.startReplay(null);
        GraphRecording.Abort argument = assertThrows(GraphRecording.Abort.class,
                () -> pass(r, new int[]{1, 2}, arguments(11, 13)));
        assertEquals(GraphRecording.Abort.Remedy.RETRY, argument.remedy);
        assertTrue(argument.getMessage().endsWith("(a launch of " + Kernel.values()[3] + ", argument 1: captured 0xc, now 0xd)"),
                "the log names the kernel and the argument that changed: " + argument.getMessage());

        r.startReplay(null);
        GraphRecording.Abort upload = assertThrows(GraphRecording.Abort.class, () -> pass(r, new int[]{1, 2, 3}, arguments(11, 12)),
                "an upload of another size");
        assertTrue(upload.getMessage().contains("(a transient allocation, header value 2: captured 0x8, now 0xc)"),
                upload.getMessage());

        r.startReplay(null);
        r.allocate(8);
        r.upload(MemorySegment.ofArray(new int[]{1, 2}), DEVICE_BASE, 8);
        assertThrows(GraphRecording.Abort.class, () -> r.launch(3, 128, 1, 1, 128, 0L, arguments(11, 12), 2),
                "another grid");

        r.startReplay(null);
        r.allocate(8);
        r.upload(MemorySegment.ofArray(new int[]{1, 2}), DEVICE_BASE, 8);
        assertThrows(GraphRecording.Abort.class, () -> r.launch(3, 64, 1, 1, 128, 16L << 32, arguments(11, 12), 2),
                "the same grid in clusters");
    }

    @Test
    void aReplayThatStopsShortAborts() {
        GraphRecording r = recording(1 << 16, 1 << 16);
        pass(r, new int[]{1}, arguments(1, 2));
        r.startReplay(null);
        r.allocate(4);
        GraphRecording.Abort shorter = assertThrows(GraphRecording.Abort.class, r::finishReplay);
        assertEquals(GraphRecording.Abort.Remedy.RETRY, shorter.remedy);
        r.startReplay(null);
        pass(r, new int[]{1}, arguments(1, 2));
        GraphRecording.Abort longer = assertThrows(GraphRecording.Abort.class, () -> r.product(1, 2, 3));
        assertTrue(longer.getMessage().endsWith("(the captured pass had ended)"), longer.getMessage());
    }

    @Test
    void aPassThatOutgrowsTheGraphsAreasAsksForMoreRoom() {
        GraphRecording small = recording(256, 1 << 10);
        assertEquals(GraphRecording.Abort.Remedy.MORE_ROOM,
                assertThrows(GraphRecording.Abort.class, () -> small.allocate(1024)).remedy);
        GraphRecording fewSlots = recording(1 << 16, 16);
        assertEquals(GraphRecording.Abort.Remedy.MORE_ROOM, assertThrows(GraphRecording.Abort.class,
                () -> fewSlots.upload(MemorySegment.ofArray(new int[8]), DEVICE_BASE, 32)).remedy);
    }

    @Test
    void transientBuffersAreDistinctAlignedAndFreeingThemFreesNothing() {
        GraphRecording r = recording(1 << 12, 1 << 10);
        DeviceBuffer a = r.allocate(10);
        DeviceBuffer b = r.allocate(10);
        assertTrue(b.address() >= a.address() + 10, "buffers do not overlap");
        assertEquals(0, (b.address() - DEVICE_BASE) % 256, "aligned as cuMemAlloc's are");
        assertEquals(-1, a.id(), "not an allocation of its own: DeviceMemory.free ignores it");
    }

    /**
     * A replay says when its graph may be launched: once the last captured upload is written (the
     * graph's copies then read the replay's values), before the calls after it are checked.
     */
    @Test
    void aReplaySaysOnceWhenItsUploadsAreWrittenBeforeTheCallsAfterThem() {
        GraphRecording r = recording(1 << 16, 1 << 16);
        pass(r, new int[]{5, 6, 7}, arguments(11, 12));
        List<int[]> seen = new ArrayList<>();
        r.startReplay(() -> seen.add(r.hostArea().asSlice(0, 12).toArray(JAVA_INT)));
        DeviceBuffer buffer = r.allocate(12);
        assertTrue(seen.isEmpty(), "not before the upload");
        r.upload(MemorySegment.ofArray(new int[]{8, 9, 10}), buffer.address(), 12);
        assertEquals(1, seen.size(), "right after the last upload");
        assertArrayEquals(new int[]{8, 9, 10}, seen.getFirst(), "with the replay's values in the upload area");
        r.launch(3, 64, 1, 1, 128, 0L, arguments(11, 12), 2);
        r.product(1, 4096, 6144, 0x1000, buffer.address(), 0x2000);
        r.finishReplay();
        assertEquals(1, seen.size(), "once");
    }

    @Test
    void aReplayOfAPassWithoutUploadsMayLaunchAtOnce() {
        GraphRecording r = recording(1 << 10, 1 << 10);
        r.launch(1, 2, 1, 1, 32, 0L, arguments(7), 1);
        int[] calls = {0};
        r.startReplay(() -> calls[0]++);
        assertEquals(1, calls[0]);
        r.launch(1, 2, 1, 1, 32, 0L, arguments(7), 1);
        r.finishReplay();
        assertEquals(1, calls[0]);
    }

    /** A replay that differs before its last upload is written never says it may launch. */
    @Test
    void aReplayThatDiffersBeforeItsLastUploadNeverSaysItMayLaunch() {
        GraphRecording r = recording(1 << 16, 1 << 16);
        DeviceBuffer first = r.allocate(8);
        r.upload(MemorySegment.ofArray(new int[]{1, 2}), first.address(), 8);
        DeviceBuffer second = r.allocate(8);
        r.upload(MemorySegment.ofArray(new int[]{3, 4}), second.address(), 8);
        int[] calls = {0};
        r.startReplay(() -> calls[0]++);
        r.allocate(8);
        r.upload(MemorySegment.ofArray(new int[]{1, 2}), first.address(), 8);
        r.allocate(8);
        assertThrows(GraphRecording.Abort.class, () -> r.upload(MemorySegment.ofArray(new int[]{3, 4, 5}), second.address(), 12),
                "an upload of another size");
        assertEquals(0, calls[0]);
    }
}
