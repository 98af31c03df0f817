package dev.jvllm.weights;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;
import java.util.Arrays;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.stream.IntStream;

/**
 * A checkpoint whose float8 weights (FP8 checkpoints: {@code quant_method} "fp8", or compressed-tensors'
 * float-quantized format) read as {@code target}-typed tensors, each element its float8 value times
 * its scale: one scale a tensor ({@code weight_scale} [] or [1]), one a row ([out] or [out, 1]), or
 * one a block of rows × columns ({@code weight_scale_inv} [⌈out/b0⌉, ⌈in/b1⌉], DeepSeek-V3's). The
 * float8 tensors are decoded once, when first asked for, into memory this checkpoint frees on close;
 * every other tensor is the underlying checkpoint's. The weights then cost what {@code target} costs:
 * no float8 kernel runs yet.
 */
public final class Fp8Checkpoint implements Checkpoint {

    private static final float[] E4M3 = table(true);
    private static final float[] E5M2 = table(false);

    private final Checkpoint inner;
    private final DType target;
    private final int[] blockSize;
    private final Arena arena = Arena.ofShared();
    private final Map<String, WeightTensor> decoded = new ConcurrentHashMap<>();

    /**
     * @param target    F32 or BF16, the type the weights are decoded to
     * @param blockSize the {@code weight_block_size} [rows, columns] of block-wise scales, or null
     */
    public Fp8Checkpoint(Checkpoint inner, DType target, int[] blockSize) {
        if (target != DType.F32 && target != DType.BF16) throw new IllegalArgumentException("float8 weights decode to F32 or BF16, not " + target);
        if (blockSize != null && (blockSize.length != 2 || blockSize[0] < 1 || blockSize[1] < 1)) {
            throw new WeightsException("weight_block_size must be two positive sizes: " + Arrays.toString(blockSize));
        }
        this.inner = inner;
        this.target = target;
        this.blockSize = blockSize == null ? null : blockSize.clone();
    }

    @Override
    public Set<String> names() {
        return inner.names();
    }

    @Override
    public Optional<WeightTensor> find(String name) {
        return inner.find(name).map(t -> isFloat8(t) ? decoded.computeIfAbsent(name, n -> decode(t)) : t);
    }

    @Override
    public WeightTensor get(String name) {
        WeightTensor t = inner.get(name);
        return isFloat8(t) ? decoded.computeIfAbsent(name, n -> decode(t)) : t;
    }

    @Override
    public void loadIntoMemory(int threads) {
        inner.loadIntoMemory(threads);
    }

    @Override
    public void close() {
        arena.close();
        inner.close();
    }

    private static boolean isFloat8(WeightTensor t) {
        return t.dtype() == DType.F8_E4M3 || t.dtype() == DType.F8_E5M2;
    }

    private WeightTensor decode(WeightTensor weight) {
        if (weight.rank() != 2) throw new WeightsException("float8 tensor '" + weight.name() + "' is not a matrix: " + weight);
        String base = weight.name().endsWith("weight") ? weight.name().substring(0, weight.name().length() - "weight".length()) : weight.name() + ".";
        WeightTensor scale = inner.find(base + "weight_scale").or(() -> inner.find(base + "weight_scale_inv"))
                .orElseThrow(() -> new WeightsException("float8 tensor '" + weight.name() + "' has no " + base + "weight_scale or "
                        + base + "weight_scale_inv in " + weight.file().getFileName()));
        float[] scales = floats(scale);
        int rows = Math.toIntExact(weight.dim(0)), cols = Math.toIntExact(weight.dim(1));
        Scales layout = layout(weight, scale, scales.length, rows, cols);
        float[] values = weight.dtype() == DType.F8_E4M3 ? E4M3 : E5M2;
        MemorySegment out = arena.allocate((long) rows * cols * target.byteSize(), 16);
        MemorySegment in = weight.data();
        if (ByteOrder.nativeOrder() != ByteOrder.LITTLE_ENDIAN) throw new WeightsException("float8 decoding needs a little-endian machine");
        // Rows in chunks on the common pool: an 8B model has about 7 billion weights to decode.
        int chunk = 64;
        IntStream.range(0, (rows + chunk - 1) / chunk).parallel().forEach(part -> {
            byte[] raw = new byte[cols];
            float[] decoded = new float[cols];
            short[] halves = target == DType.BF16 ? new short[cols] : null;
            // Bulk byte copies through array views (the machine's order is the file's, little-endian, checked below).
            MemorySegment rawView = MemorySegment.ofArray(raw), decodedView = MemorySegment.ofArray(decoded);
            MemorySegment halvesView = halves == null ? null : MemorySegment.ofArray(halves);
            for (int r = part * chunk; r < Math.min(rows, (part + 1) * chunk); r++) {
                MemorySegment.copy(in, (long) r * cols, rawView, 0, cols);
                for (int c = 0; c < cols; c += layout.span()) {
                    float s = scales[layout.index(r, c)];
                    for (int k = c, end = Math.min(cols, c + layout.span()); k < end; k++) decoded[k] = values[raw[k] & 0xff] * s;
                }
                if (halves == null) {
                    MemorySegment.copy(decodedView, 0, out, (long) r * cols * 4, cols * 4L);
                } else {
                    for (int k = 0; k < cols; k++) halves[k] = toBf16(decoded[k]);
                    MemorySegment.copy(halvesView, 0, out, (long) r * cols * 2, cols * 2L);
                }
            }
        });
        return new WeightTensor(weight.name(), target, weight.shape(), out, weight.file());
    }

    /** Where a weight's scale is: {@code index(row, column)} for columns {@code span} at a time. */
    private record Scales(int span, int blockRows, int blockColumns, int kind) {
        int index(int row, int column) {
            return switch (kind) {
                case 0 -> 0;
                case 1 -> row;
                default -> (row / blockRows) * blockColumns + column / span;
            };
        }
    }

    private Scales layout(WeightTensor weight, WeightTensor scale, long n, int rows, int cols) {
        boolean inverse = scale.name().endsWith("_inv");
        if (!inverse && n == 1) return new Scales(cols, 0, 0, 0);
        if (!inverse && n == rows && (scale.rank() == 1 || scale.dim(-1) == 1)) return new Scales(cols, 0, 0, 1);
        if (blockSize != null && scale.rank() == 2) {
            int blockRows = (rows + blockSize[0] - 1) / blockSize[0], blockCols = (cols + blockSize[1] - 1) / blockSize[1];
            if (scale.dim(0) == blockRows && scale.dim(1) == blockCols) return new Scales(blockSize[1], blockSize[0], blockCols, 2);
        }
        throw new WeightsException("the scale '" + scale.name() + "' " + Arrays.toString(scale.shape()) + " fits none of "
                + weight.name() + " " + Arrays.toString(weight.shape()) + "'s schemes: one scale, one a row"
                + (blockSize == null ? "" : ", or one a " + blockSize[0] + " × " + blockSize[1] + " block"));
    }

    /** A scale tensor's elements, each finite. */
    private static float[] floats(WeightTensor t) {
        float[] out = WeightValues.floats(t);
        for (int i = 0; i < out.length; i++) {
            if (!Float.isFinite(out[i])) throw new WeightsException("scale tensor '" + t.name() + "' holds " + out[i] + " at " + i);
        }
        return out;
    }

    /** Round to nearest even, as PyTorch converts float32 to bfloat16. */
    private static short toBf16(float v) {
        int bits = Float.floatToRawIntBits(v);
        if (Float.isNaN(v)) return (short) 0x7fc0;
        return (short) ((bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16);
    }

    /** The value of each of the 256 bytes: e4m3fn (bias 7, no infinities, 0x7f/0xff NaN) or e5m2 (bias 15, IEEE-like). */
    private static float[] table(boolean e4m3) {
        float[] values = new float[256];
        int mantissaBits = e4m3 ? 3 : 2, bias = e4m3 ? 7 : 15, exponentMax = e4m3 ? 15 : 31;
        for (int b = 0; b < 256; b++) {
            int sign = b >>> 7, exponent = (b >>> mantissaBits) & exponentMax, mantissa = b & ((1 << mantissaBits) - 1);
            float magnitude;
            if (e4m3 && exponent == 15 && mantissa == 7) magnitude = Float.NaN;
            else if (!e4m3 && exponent == 31) magnitude = mantissa == 0 ? Float.POSITIVE_INFINITY : Float.NaN;
            else if (exponent == 0) magnitude = (float) (mantissa / (double) (1 << mantissaBits) * Math.pow(2, 1 - bias));
            else magnitude = (float) ((1 + mantissa / (double) (1 << mantissaBits)) * Math.pow(2, exponent - bias));
            values[b] = sign == 1 ? -magnitude : magnitude;
        }
        return values;
    }

    /** The value of one e4m3fn byte (for tests and tools). */
    static float e4m3(int b) {
        return E4M3[b & 0xff];
    }
}
