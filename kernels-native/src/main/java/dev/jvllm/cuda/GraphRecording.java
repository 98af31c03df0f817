package dev.jvllm.cuda;

import java.lang.foreign.MemorySegment;
import java.util.Arrays;
import java.util.IdentityHashMap;
import java.util.Map;

import static java.lang.foreign.ValueLayout.JAVA_LONG;

/**
 * The device work of one forward pass as a CUDA graph replays it, and what the backend must do
 * differently while a pass is recorded or replayed.
 *
 * <p>While the pass is <em>captured</em>, the backend's calls run as usual but the stream records
 * them instead of running them; the recording notes, in order, each kernel launch (kernel, grid,
 * argument values), each matrix product, each upload and each transient allocation. Transient
 * buffers (index tensors, batch metadata) are cut from the graph's own device area, and uploads
 * are copied from the graph's own page-locked area, so both keep their addresses for the graph's
 * life.
 *
 * <p>To <em>replay</em>, the backend runs the same Java forward pass again without launching
 * anything: each call is compared with the recording (a difference aborts the replay, and the pass
 * runs eagerly), each transient allocation gets the buffer it got when captured, and each upload
 * only writes its new values into its page-locked slot, where the graph's copy reads them. Then
 * the graph is launched. So the graph is used only when the pass would have launched exactly the
 * work it holds, on the same buffers; only uploaded values differ.
 *
 * <p>The recording holds every buffer the captured work reads or writes, so none is freed while
 * the graph may still run.
 */
final class GraphRecording {

    /** Why a pass could not be captured or replayed; the pass then runs eagerly. */
    static final class Abort extends RuntimeException {

        enum Remedy {
            /** A later pass of the shape may be captured (e.g. once its activation buffers exist). */
            RETRY,
            /** A later capture of the shape needs larger transient and upload areas. */
            MORE_ROOM,
            /** No pass of this model can be captured (it reads results back mid-pass). */
            NEVER
        }

        final Remedy remedy;

        Abort(String reason, Remedy remedy) {
            super(reason, null, false, false);
            this.remedy = remedy;
        }
    }

    private static final long LAUNCH = 1, PRODUCT = 2, UPLOAD = 3, ALLOCATION = 4;
    private static final int ALIGNMENT = 256;

    private final DeviceBuffer deviceArea;
    private final MemorySegment hostArea;
    private final Map<DeviceBuffer, Boolean> held = new IdentityHashMap<>();
    private long[] tape = new long[1024];
    private int length;
    private boolean replaying;
    private int cursor;
    private long deviceUsed;
    private long hostUsed;
    /** The tape's length after the captured pass's last upload (0: it uploaded nothing). */
    private int uploadsEnd;
    /** Run once in a replay when the pass has written all of the captured pass's uploads, or null. */
    private Runnable whenUploaded;

    /**
     * @param deviceArea where transient buffers are cut from
     * @param hostArea   page-locked memory the uploads are copied from
     */
    GraphRecording(DeviceBuffer deviceArea, MemorySegment hostArea) {
        this.deviceArea = deviceArea;
        this.hostArea = hostArea;
        held.put(deviceArea, Boolean.TRUE);
    }

    boolean replaying() {
        return replaying;
    }

    /**
     * Starts a replay: the calls from here on are compared with the captured ones. {@code uploaded}
     * (or null) runs once the pass has written the last of the captured pass's uploads into the
     * upload area (at once if it made none): from then on the graph's inputs are in place and it
     * may be launched while the rest of the pass is checked.
     */
    void startReplay(Runnable uploaded) {
        replaying = true;
        cursor = 0;
        deviceUsed = 0;
        hostUsed = 0;
        whenUploaded = uploaded;
        if (uploadsEnd == 0) uploadsDone();
    }

    private void uploadsDone() {
        Runnable run = whenUploaded;
        whenUploaded = null;
        if (run != null) run.run();
    }

    /** Checks that the replayed pass made every call the captured one made. */
    void finishReplay() {
        if (cursor != length) {
            throw new Abort("the pass made fewer calls than the captured one", Abort.Remedy.RETRY);
        }
    }

    /** Keeps {@code buffer} allocated while the graph exists. */
    void hold(DeviceBuffer buffer) {
        if (!replaying) held.put(buffer, Boolean.TRUE);
    }

    /**
     * A kernel launch with {@code argumentCount} 8-byte argument values in {@code values}, its
     * blocks in clusters of {@code cluster} (the launcher's encoding of the widths; 0 for a plain
     * launch): noted when capturing, compared when replaying. Returns whether the launch is to be made.
     */
    boolean launch(int kernel, int gridX, int gridY, int gridZ, int threads, long cluster, MemorySegment values,
                   int argumentCount) {
        long shape = ((long) kernel << 40) ^ ((long) threads << 24) ^ argumentCount;
        step(LAUNCH, shape, gridX, gridY, gridZ);
        step(cluster);
        for (int i = 0; i < argumentCount; i++) {
            step(values.getAtIndex(JAVA_LONG, i));
        }
        return !replaying;
    }

    /** A matrix product by its shape and operand addresses; returns whether it is to be run. */
    boolean product(long... operands) {
        step(PRODUCT, operands.length, 0, 0, 0);
        for (long operand : operands) step(operand);
        return !replaying;
    }

    /**
     * A transient buffer of {@code bytes}, cut from the graph's device area in call order, so that
     * a replay gets the same one as the capture.
     */
    DeviceBuffer allocate(long bytes) {
        long at = deviceUsed;
        long end = at + Math.max(bytes, 1);
        if (end > deviceArea.bytes()) {
            throw new Abort("the pass needs more than the " + deviceArea.bytes() + " bytes of transient memory"
                    + " set aside for its graph", Abort.Remedy.MORE_ROOM);
        }
        deviceUsed = (end + ALIGNMENT - 1) / ALIGNMENT * ALIGNMENT;
        step(ALLOCATION, at, bytes, 0, 0);
        // Not an allocation of its own: freeing it (DeviceMemory.free) does nothing.
        return new DeviceBuffer(-1, deviceArea.address() + at, bytes);
    }

    /**
     * The page-locked slot an upload of {@code bytes} to {@code address} is copied from, with the
     * data written into it; when capturing the caller then queues the copy from it.
     */
    MemorySegment upload(MemorySegment data, long address, long bytes) {
        long at = hostUsed;
        if (at + bytes > hostArea.byteSize()) {
            throw new Abort("the pass uploads more than the " + hostArea.byteSize() + " bytes set aside for its graph",
                    Abort.Remedy.MORE_ROOM);
        }
        hostUsed = (at + bytes + 15) & ~15L;
        step(UPLOAD, address, bytes, at, 0);
        MemorySegment slot = hostArea.asSlice(at, bytes);
        MemorySegment.copy(data, 0, slot, 0, bytes);
        if (!replaying) {
            uploadsEnd = length;
        } else if (cursor == uploadsEnd) {
            uploadsDone();
        }
        return slot;
    }

    /** How far into the pass (call records, and all of them) its last upload came: how early a replay may launch. */
    String uploadsPlace() {
        return "inputs uploaded by call record " + uploadsEnd + " of " + length;
    }

    /** Device memory the graph holds itself (its transient area), in bytes. */
    long deviceBytes() {
        return deviceArea.bytes();
    }

    MemorySegment hostArea() {
        return hostArea;
    }

    /**
     * What differs at tape position {@code at}, where the replayed pass gave {@code now}: the captured
     * call it falls in and which of its values (so that a log names the buffer or kernel that changed).
     */
    private String difference(int at, long now) {
        if (at >= length) return "the captured pass had ended";
        int start = 0;
        while (true) {
            long kind = tape[start];
            int end = start + 5 + switch ((int) kind) {
                case (int) LAUNCH -> 1 + (int) (tape[start + 1] & 0xFFFFFF);
                case (int) PRODUCT -> (int) tape[start + 1];
                default -> 0;
            };
            if (at < end || end >= length) {
                String call = switch ((int) kind) {
                    case (int) LAUNCH -> "a launch of " + Kernel.values()[(int) (tape[start + 1] >>> 40)];
                    case (int) PRODUCT -> "a product of " + tape[start + 1] + " operands";
                    case (int) UPLOAD -> "an upload";
                    default -> "a transient allocation";
                };
                int offset = at - start;
                String value = offset == 0 ? "its kind" : kind == LAUNCH && offset >= 6 ? "argument " + (offset - 6)
                        : kind == PRODUCT && offset >= 5 ? "operand " + (offset - 5) : "header value " + offset;
                return call + ", " + value + ": captured 0x" + Long.toHexString(tape[at]) + ", now 0x" + Long.toHexString(now);
            }
            start = end;
        }
    }

    private void step(long kind, long a, long b, long c, long d) {
        step(kind);
        step(a);
        step(b);
        step(c);
        step(d);
    }

    private void step(long value) {
        if (replaying) {
            if (cursor >= length || tape[cursor] != value) {
                throw new Abort("the pass differs from the captured one at its call record " + cursor + " ("
                        + difference(cursor, value) + ")", Abort.Remedy.RETRY);
            }
            cursor++;
            return;
        }
        if (length == tape.length) tape = Arrays.copyOf(tape, length * 2);
        tape[length++] = value;
    }
}
