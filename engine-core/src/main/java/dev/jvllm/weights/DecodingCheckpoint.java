package dev.jvllm.weights;

import dev.jvllm.spi.NativeMemory;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.stream.IntStream;

/**
 * A checkpoint whose quantized weights read as unquantized tensors of a {@code target} type (F32,
 * BF16 or F16), each decoded once, when first asked for, into memory this checkpoint frees on
 * close or on {@link #releaseDecoded}; every other tensor is the underlying checkpoint's. The
 * weights then cost what the target type costs, except 4-bit GPTQ and AWQ weights a backend takes as
 * they are ({@link PackedIntCheckpoint#int4}).
 */
public abstract sealed class DecodingCheckpoint implements Checkpoint permits BitsAndBytesCheckpoint, Fp8Checkpoint, PackedIntCheckpoint {

    /** Output rows a task of {@link #decodeRows} takes. */
    private static final int ROWS_A_TASK = 64;

    final Checkpoint inner;
    final DType target;
    /** Each decoded tensor with the arena that holds its memory, so that it can be freed alone. */
    private record Decoded(WeightTensor tensor, Arena arena) {
    }

    private final Map<String, Decoded> decoded = new ConcurrentHashMap<>();

    DecodingCheckpoint(Checkpoint inner, DType target) {
        if (target != DType.F32 && target != DType.BF16 && target != DType.F16) {
            throw new IllegalArgumentException("quantized weights decode to F32, BF16 or F16, not " + target);
        }
        this.inner = inner;
        this.target = target;
    }

    /** Whether {@code name} is a weight this checkpoint decodes. */
    abstract boolean decodes(String name);

    /** The decoded tensor {@code name}, for which {@link #decodes} holds, its memory from {@code arena} ({@link #decodeRows}). */
    abstract WeightTensor decode(String name, Arena arena);

    @Override
    public Set<String> names() {
        return inner.names();
    }

    @Override
    public Optional<WeightTensor> find(String name) {
        return decodes(name) ? Optional.of(decodedTensor(name)) : inner.find(name);
    }

    @Override
    public boolean contains(String name) {
        return decodes(name) || inner.contains(name);
    }

    @Override
    public WeightTensor get(String name) {
        return decodes(name) ? decodedTensor(name) : inner.get(name);
    }

    private WeightTensor decodedTensor(String name) {
        return decoded.computeIfAbsent(name, n -> {
            Arena arena = Arena.ofShared();
            try {
                return new Decoded(decode(n, arena), arena);
            } catch (RuntimeException | Error e) {
                arena.close();
                throw e;
            }
        }).tensor();
    }

    /**
     * Frees the memory of every tensor decoded so far, for a backend that copied them away at load
     * (a GPU's): a tensor handed out before must not be read afterwards (its memory reads as
     * closed), and asking for it again decodes it again.
     *
     * @return the bytes freed
     */
    public long releaseDecoded() {
        long bytes = 0;
        for (String name : List.copyOf(decoded.keySet())) {
            Decoded released = decoded.remove(name);
            if (released == null) continue;
            bytes += released.tensor().data().byteSize();
            released.arena().close();
        }
        return bytes;
    }

    @Override
    public void loadIntoMemory(int threads) {
        inner.loadIntoMemory(threads);
    }

    @Override
    public void close() {
        releaseDecoded();
        inner.close();
    }

    /** Writes the rows of a [rows, cols] tensor of the target type, in parallel tasks of up to 64 rows. */
    interface RowDecoder {
        /** Fills {@code out[r - first]} (each {@code cols} long) with rows {@code first .. first + out.length - 1}. */
        void decode(int first, float[][] out);
    }

    /** A [rows, cols] tensor named {@code name} of the target type whose rows {@code rowDecoder} gives. */
    final WeightTensor decodeRows(Arena arena, String name, int rows, int cols, RowDecoder rowDecoder, java.nio.file.Path file) {
        return inRowTasks(arena, name, rows, cols, file, (first, count, out) -> {
            float[][] values = new float[count][cols];
            rowDecoder.decode(first, values);
            short[] halves = target == DType.F32 ? null : new short[cols];
            for (int r = 0; r < count; r++) store(values[r], out, (long) (first + r) * cols, halves);
        });
    }

    /** Writes the rows of a [rows, cols] tensor as the target's 16-bit patterns ({@link #half}). */
    interface HalfRowDecoder {
        /** Fills {@code out[r - first]} (each {@code cols} long) with rows {@code first .. first + out.length - 1}. */
        void decode(int first, short[][] out);
    }

    /** {@link #decodeRows} for a 16-bit target, each row's patterns written by the decoder itself (no float rows between). */
    final WeightTensor decodeHalfRows(Arena arena, String name, int rows, int cols, HalfRowDecoder rowDecoder, java.nio.file.Path file) {
        if (target == DType.F32) throw new IllegalStateException("float32 has no 16-bit patterns");
        return inRowTasks(arena, name, rows, cols, file, (first, count, out) -> {
            short[][] values = new short[count][cols];
            rowDecoder.decode(first, values);
            for (int r = 0; r < count; r++) MemorySegment.copy(MemorySegment.ofArray(values[r]), 0, out, (long) (first + r) * cols * 2, cols * 2L);
        });
    }

    /** Writes rows {@code first .. first + count - 1} of a tensor of the target type into {@code out}. */
    private interface RowTask {
        void write(int first, int count, MemorySegment out);
    }

    /**
     * A [rows, cols] tensor named {@code name} of the target type, its rows written by {@code task} in
     * parallel tasks of up to {@value #ROWS_A_TASK} rows on the common pool (an 8B model has billions
     * of weights to decode).
     */
    private WeightTensor inRowTasks(Arena arena, String name, int rows, int cols, java.nio.file.Path file, RowTask task) {
        // every row is written by its task: no zeroing first
        MemorySegment out = NativeMemory.unzeroed((long) rows * cols * target.byteSize(), 16, arena);
        IntStream.range(0, (rows + ROWS_A_TASK - 1) / ROWS_A_TASK).parallel().forEach(part -> {
            int first = part * ROWS_A_TASK;
            task.write(first, Math.min(ROWS_A_TASK, rows - first), out);
        });
        return new WeightTensor(name, target, new long[]{rows, cols}, out, file);
    }

    /** {@code v} as the 16-bit target's pattern, rounded as {@link #store} rounds. */
    final short half(float v) {
        return target == DType.BF16 ? toBf16(v) : Float.floatToFloat16(v);
    }

    /** Turns one row's bytes into its values. */
    interface ByteRowDecoder {
        void decode(int row, byte[] raw, float[] out);
    }

    /** {@link #decodeRows} for a [rows, cols] matrix of one byte an element, each row's bytes handed over in turn. */
    final WeightTensor decodeByteRows(Arena arena, WeightTensor weight, ByteRowDecoder rowDecoder) {
        int rows = Math.toIntExact(weight.dim(0)), cols = Math.toIntExact(weight.dim(1));
        MemorySegment data = weight.data();
        return decodeRows(arena, weight.name(), rows, cols, (first, out) -> {
            byte[] raw = new byte[cols];
            for (int i = 0; i < out.length; i++) {
                MemorySegment.copy(data, java.lang.foreign.ValueLayout.JAVA_BYTE, (long) (first + i) * cols, raw, 0, cols);
                rowDecoder.decode(first + i, raw, out[i]);
            }
        }, weight.file());
    }

    /** One row's values into {@code out} at element {@code offset}, as the target type. */
    private void store(float[] row, MemorySegment out, long offset, short[] halves) {
        if (halves == null) {
            MemorySegment.copy(MemorySegment.ofArray(row), 0, out, offset * 4, row.length * 4L);
            return;
        }
        if (target == DType.BF16) {
            for (int k = 0; k < row.length; k++) halves[k] = toBf16(row[k]);
        } else {
            for (int k = 0; k < row.length; k++) halves[k] = Float.floatToFloat16(row[k]);
        }
        MemorySegment.copy(MemorySegment.ofArray(halves), 0, out, offset * 2, row.length * 2L);
    }

    /** A scale tensor's elements, each finite. */
    static float[] finiteFloats(WeightTensor t) {
        float[] out = WeightValues.floats(t);
        for (int i = 0; i < out.length; i++) {
            if (!Float.isFinite(out[i])) throw new WeightsException("scale tensor '" + t.name() + "' holds " + out[i] + " at " + i);
        }
        return out;
    }

    /** Round to nearest even, as PyTorch converts float32 to bfloat16. */
    static short toBf16(float v) {
        int bits = Float.floatToRawIntBits(v);
        if (Float.isNaN(v)) return (short) 0x7fc0;
        return (short) ((bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16);
    }
}
