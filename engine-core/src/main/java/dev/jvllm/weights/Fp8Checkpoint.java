package dev.jvllm.weights;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Arrays;

/**
 * A checkpoint whose float8 weights (FP8 checkpoints: {@code quant_method} "fp8", or compressed-tensors'
 * float-quantized format) read as {@code target}-typed tensors, each element its float8 value times
 * its scale: one scale a tensor ({@code weight_scale} [] or [1]), one a row ([out] or [out, 1]), or
 * one a block of rows × columns ({@code weight_scale_inv} [⌈out/b0⌉, ⌈in/b1⌉], DeepSeek-V3's). The
 * float8 tensors are decoded once, when first asked for, into memory this checkpoint frees on close;
 * every other tensor is the underlying checkpoint's. The weights then cost what {@code target} costs:
 * no float8 kernel runs yet.
 */
public final class Fp8Checkpoint extends DecodingCheckpoint {

    private static final float[] E4M3 = table(true);
    private static final float[] E5M2 = table(false);

    private final int[] blockSize;

    /**
     * @param target    F32, BF16 or F16, the type the weights are decoded to
     * @param blockSize the {@code weight_block_size} [rows, columns] of block-wise scales, or null
     */
    public Fp8Checkpoint(Checkpoint inner, DType target, int[] blockSize) {
        super(inner, target);
        if (blockSize != null && (blockSize.length != 2 || blockSize[0] < 1 || blockSize[1] < 1)) {
            throw new WeightsException("weight_block_size must be two positive sizes: " + Arrays.toString(blockSize));
        }
        this.blockSize = blockSize == null ? null : blockSize.clone();
    }

    @Override
    boolean decodes(String name) {
        return inner.find(name).map(t -> t.dtype() == DType.F8_E4M3 || t.dtype() == DType.F8_E5M2).orElse(false);
    }

    @Override
    WeightTensor decode(String name, Arena arena) {
        WeightTensor weight = inner.get(name);
        if (weight.rank() != 2) throw new WeightsException("float8 tensor '" + weight.name() + "' is not a matrix: " + weight);
        String base = weight.name().endsWith("weight") ? weight.name().substring(0, weight.name().length() - "weight".length()) : weight.name() + ".";
        WeightTensor scale = inner.find(base + "weight_scale").or(() -> inner.find(base + "weight_scale_inv"))
                .orElseThrow(() -> new WeightsException("float8 tensor '" + weight.name() + "' has no " + base + "weight_scale or "
                        + base + "weight_scale_inv in " + weight.file().getFileName()));
        float[] scales = finiteFloats(scale);
        int rows = Math.toIntExact(weight.dim(0)), cols = Math.toIntExact(weight.dim(1));
        Scales layout = layout(weight, scale, scales.length, rows, cols);
        float[] values = weight.dtype() == DType.F8_E4M3 ? E4M3 : E5M2;
        if (target != DType.F32) return decodeHalves(weight, arena, layout, scales, values);
        return decodeByteRows(arena, weight, (r, raw, row) -> {
            for (int c = 0; c < cols; c += layout.span()) {
                float s = scales[layout.index(r, c)];
                for (int k = c, end = Math.min(cols, c + layout.span()); k < end; k++) row[k] = values[raw[k] & 0xff] * s;
            }
        });
    }

    /** Scale spans at least this long (and a tensor's one scale) take the 256 bytes' values times the scale rounded once, then a lookup a byte. */
    private static final int LOOKUP_SPAN = 256;

    /**
     * {@link #decode} to a 16-bit type: each element {@code values[byte] × scale} rounded as
     * {@link #half} rounds it (as the float rows' store would), by a table of the 256 bytes' patterns
     * where a scale covers a tensor or a long span (a row), else one at a time (DeepSeek-V3's
     * 128-column blocks).
     */
    private WeightTensor decodeHalves(WeightTensor weight, Arena arena, Scales layout, float[] scales, float[] values) {
        int rows = Math.toIntExact(weight.dim(0)), cols = Math.toIntExact(weight.dim(1));
        MemorySegment data = weight.data();
        return decodeHalfRows(arena, weight.name(), rows, cols, (first, out) -> {
            byte[] raw = new byte[cols];
            short[] patterns = new short[256];
            int patternsOf = -1;  // the scale index the patterns are made for
            for (int i = 0; i < out.length; i++) {
                int r = first + i;
                MemorySegment.copy(data, ValueLayout.JAVA_BYTE, (long) r * cols, raw, 0, cols);
                short[] row = out[i];
                for (int c = 0; c < cols; c += layout.span()) {
                    int at = layout.index(r, c), end = Math.min(cols, c + layout.span());
                    float s = scales[at];
                    if (layout.kind() == 0 || layout.span() >= LOOKUP_SPAN) {
                        if (at != patternsOf) {
                            for (int b = 0; b < 256; b++) patterns[b] = half(values[b] * s);
                            patternsOf = at;
                        }
                        for (int k = c; k < end; k++) row[k] = patterns[raw[k] & 0xff];
                    } else {
                        for (int k = c; k < end; k++) row[k] = half(values[raw[k] & 0xff] * s);
                    }
                }
            }
        }, weight.file());
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
