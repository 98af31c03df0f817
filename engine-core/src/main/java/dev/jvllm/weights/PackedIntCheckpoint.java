package dev.jvllm.weights;

import dev.jvllm.spi.NativeMemory;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.Arrays;
import java.util.LinkedHashSet;
import java.util.Optional;
import java.util.Set;
import java.util.stream.IntStream;

/**
 * A checkpoint of GPTQ or AWQ integer weights whose projections read as {@code <prefix>.weight}
 * tensors of the {@code target} type, [out, in], each element {@code (q - zero) × scale} of its
 * group, decoded once when first asked for. The packed tensors of a projection {@code prefix}:
 * <ul>
 *   <li>GPTQ: {@code qweight} int32 [in / p, out], p = 32 / bits values a word packed along the
 *       input from the low bits up; {@code qzeros} int32 [groups, out / p] packed so along the
 *       output; {@code scales} [groups, out]; {@code g_idx} int32 [in], each input's group
 *       (act-order), or input / group size without it. AutoGPTQ's format ("gptq") stores each
 *       zero less one, so its zero is the stored value + 1; "gptq_v2" stores the zero itself.</li>
 *   <li>AWQ (AutoAWQ's GEMM layout): {@code qweight} int32 [in, out / 8] and {@code qzeros}
 *       [in / group size, out / 8], eight 4-bit values a word along the output, output 8w + j in
 *       bits 4·{0, 4, 1, 5, 2, 6, 3, 7}[j]; {@code scales} [groups, out].</li>
 * </ul>
 * Every other tensor (biases, embeddings, norms, an unquantized head) is the underlying
 * checkpoint's. Decoded weights cost what {@code target} costs; a backend that multiplies by 4-bit
 * weights as they are takes them from {@link #int4} instead.
 */
public final class PackedIntCheckpoint extends DecodingCheckpoint {

    /** How the integers are packed. */
    public enum Format {
        /** AutoGPTQ's (checkpoint_format "gptq"): zeros stored less one. */
        GPTQ,
        /** GPTQModel's "gptq_v2": zeros stored as they are. */
        GPTQ_V2,
        /** AutoAWQ's GEMM layout, 4-bit. */
        AWQ
    }

    private static final ValueLayout.OfInt I32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    /** The nibble that holds output 8w + j of an AWQ word: AutoAWQ packs outputs {0, 2, 4, 6, 1, 3, 5, 7} from the low bits. */
    private static final int[] AWQ_NIBBLE = {0, 4, 1, 5, 2, 6, 3, 7};
    private static final String[] PARTS = {".qweight", ".qzeros", ".scales", ".g_idx"};

    private final Format format;
    private final int bits;
    private final int groupSize;

    /**
     * @param target    F32, BF16 or F16, the type the weights are decoded to
     * @param bits      GPTQ: 2, 4 or 8; AWQ: 4
     * @param groupSize the inputs a scale and zero cover, or -1 for one group over all of them
     */
    public PackedIntCheckpoint(Checkpoint inner, DType target, Format format, int bits, int groupSize) {
        super(inner, target);
        boolean supported = format == Format.AWQ ? bits == 4 : bits == 2 || bits == 4 || bits == 8;
        if (!supported) throw new WeightsException(format + " weights of " + bits + " bits are not read (GPTQ: 2, 4 or 8 bits; AWQ: 4)");
        if (groupSize == 0 || groupSize < -1) throw new WeightsException("group_size must be positive or -1, not " + groupSize);
        this.format = format;
        this.bits = bits;
        this.groupSize = groupSize;
    }

    /** Bits a packed weight. */
    public int bits() {
        return bits;
    }

    /** The inputs a scale and zero cover, or -1 for one group over all of them. */
    public int groupSize() {
        return groupSize;
    }

    /** The type weights are decoded to. */
    public DType target() {
        return target;
    }

    /** The underlying names, with each packed projection's parts read as its {@code .weight}. */
    @Override
    public Set<String> names() {
        Set<String> names = new LinkedHashSet<>();
        Set<String> inner = this.inner.names();
        for (String name : inner) {
            String part = Arrays.stream(PARTS).filter(name::endsWith).findFirst().orElse(null);
            if (part == null) {
                names.add(name);
                continue;
            }
            String prefix = name.substring(0, name.length() - part.length());
            if (inner.contains(prefix + ".qweight")) names.add(prefix + ".weight");
            else names.add(name);
        }
        return names;
    }

    @Override
    boolean decodes(String name) {
        if (!name.endsWith(".weight")) return false;
        String prefix = name.substring(0, name.length() - ".weight".length());
        return inner.find(name).isEmpty() && inner.find(prefix + ".qweight").isPresent();
    }

    /** A projection's packed tensors, checked against each other. */
    private record Parts(WeightTensor qweight, int in, int out, int groups, int[] groupOf, float[] scales, int[] zeros) {
    }

    private Parts parts(String name) {
        String prefix = name.substring(0, name.length() - ".weight".length());
        WeightTensor qweight = int32Matrix(inner.get(prefix + ".qweight"));
        WeightTensor qzeros = int32Matrix(inner.find(prefix + ".qzeros").orElseThrow(() -> new WeightsException(
                "packed weight '" + qweight.name() + "' has no " + prefix + ".qzeros in " + qweight.file().getFileName())));
        WeightTensor scaleTensor = inner.find(prefix + ".scales").orElseThrow(() -> new WeightsException(
                "packed weight '" + qweight.name() + "' has no " + prefix + ".scales in " + qweight.file().getFileName()));
        int pack = 32 / bits;
        boolean awq = format == Format.AWQ;
        long inputs = awq ? qweight.dim(0) : qweight.dim(0) * pack;
        long outputs = awq ? qweight.dim(1) * pack : qweight.dim(1);
        if (inputs > Integer.MAX_VALUE || outputs > Integer.MAX_VALUE) throw new WeightsException("packed weight '" + qweight.name() + "' is too large");
        int in = (int) inputs, out = (int) outputs;
        int groups = groupSize < 0 ? 1 : (in + groupSize - 1) / groupSize;
        int[] groupOf = groupOfEachInput(prefix, in, groups);
        expectShape(scaleTensor, new long[]{groups, out}, qweight);
        expectShape(qzeros, new long[]{groups, out / pack}, qweight);
        if (out % pack != 0) throw new WeightsException("packed weight '" + qweight.name() + "' has " + out + " outputs, not a multiple of " + pack);
        return new Parts(qweight, in, out, groups, groupOf, finiteFloats(scaleTensor), zerosOf(qzeros, groups, out, pack, awq));
    }

    @Override
    WeightTensor decode(String name, Arena arena) {
        Parts parts = parts(name);
        if (target != DType.F32 && bits <= 4) return decodeHalves(name, arena, parts);
        int in = parts.in(), out = parts.out(), pack = 32 / bits;
        int[] groupOf = parts.groupOf(), zeros = parts.zeros();
        float[] scales = parts.scales();
        boolean awq = format == Format.AWQ;
        int mask = (1 << bits) - 1;
        MemorySegment words = parts.qweight().data();
        return decodeRows(arena, name, out, in, (first, rows) -> {
            int count = rows.length;
            if (awq) {
                int[] packed = new int[count / 8];  // first and count are multiples of 8
                for (int k = 0; k < in; k++) {
                    MemorySegment.copy(words, I32, ((long) k * (out / 8) + first / 8) * 4, packed, 0, packed.length);
                    int at = group(groupOf, k) * out + first;
                    for (int i = 0; i < count; i++) {
                        int q = (packed[i >>> 3] >>> (4 * AWQ_NIBBLE[i & 7])) & 0xf;
                        rows[i][k] = (q - zeros[at + i]) * scales[at + i];
                    }
                }
                return;
            }
            // A word's values are consecutive inputs of one row: written along the row, its group's
            // zero and scale read once where the word's inputs share a group (all but act-order).
            int[] packed = new int[count], at = new int[pack];
            for (int r = 0; r < in / pack; r++) {
                MemorySegment.copy(words, I32, ((long) r * out + first) * 4, packed, 0, count);
                boolean oneGroup = groupsOfWord(groupOf, r, pack, out, first, at);
                for (int i = 0; i < count; i++) {
                    float[] row = rows[i];
                    int word = packed[i];
                    if (oneGroup) {
                        int zero = zeros[at[0] + i];
                        float scale = scales[at[0] + i];
                        for (int j = 0, k = r * pack; j < pack; j++, k++) row[k] = (((word >>> (bits * j)) & mask) - zero) * scale;
                    } else {
                        for (int j = 0, k = r * pack; j < pack; j++, k++) {
                            row[k] = (((word >>> (bits * j)) & mask) - zeros[at[j] + i]) * scales[at[j] + i];
                        }
                    }
                }
            }
        }, parts.qweight().file());
    }

    /**
     * Words of up to 4 bits straight to 16-bit patterns: each row's patterns of its group's levels
     * made once a group (as {@link #decode} computes and rounds them), then a lookup a value; GPTQ's
     * act-order words whose inputs span groups look each value's up in its own group's.
     */
    private WeightTensor decodeHalves(String name, Arena arena, Parts parts) {
        int in = parts.in(), out = parts.out(), pack = 32 / bits, levels = 1 << bits, mask = levels - 1;
        int[] groupOf = parts.groupOf();
        MemorySegment words = parts.qweight().data();
        return decodeHalfRows(arena, name, out, in, (first, rows) -> {
            int count = rows.length;
            // byGroup[group][i][level]: row first + i's pattern of each level in the group, made when first needed
            short[][][] byGroup = new short[parts.groups()][][];
            if (format == Format.AWQ) {
                // A word holds eight outputs of one input: an input at a time down the rows.
                int[] packed = new int[count / 8];  // first and count are multiples of 8
                for (int k = 0; k < in; k++) {
                    MemorySegment.copy(words, I32, ((long) k * (out / 8) + first / 8) * 4, packed, 0, packed.length);
                    short[][] patterns = groupPatterns(byGroup, group(groupOf, k), parts, first, count);
                    for (int i = 0; i < count; i++) rows[i][k] = patterns[i][(packed[i >>> 3] >>> (4 * AWQ_NIBBLE[i & 7])) & 0xf];
                }
                return;
            }
            // A word's values are consecutive inputs of one row, written along it.
            int[] packed = new int[count], at = new int[pack];
            short[][][] ofInput = new short[pack][][];
            for (int r = 0; r < in / pack; r++) {
                MemorySegment.copy(words, I32, ((long) r * out + first) * 4, packed, 0, count);
                if (groupsOfWord(groupOf, r, pack, out, first, at)) {
                    short[][] patterns = groupPatterns(byGroup, (at[0] - first) / out, parts, first, count);
                    for (int i = 0; i < count; i++) {
                        short[] row = rows[i], pattern = patterns[i];
                        int word = packed[i];
                        for (int j = 0, k = r * pack; j < pack; j++, k++) row[k] = pattern[(word >>> (bits * j)) & mask];
                    }
                } else {
                    for (int j = 0; j < pack; j++) ofInput[j] = groupPatterns(byGroup, (at[j] - first) / out, parts, first, count);
                    for (int i = 0; i < count; i++) {
                        int word = packed[i];
                        for (int j = 0, k = r * pack; j < pack; j++, k++) rows[i][k] = ofInput[j][i][(word >>> (bits * j)) & mask];
                    }
                }
            }
        }, parts.qweight().file());
    }

    /** Rows first .. first + count - 1's patterns of the group's levels ({@link #levelPatterns}), made once a task. */
    private short[][] groupPatterns(short[][][] byGroup, int group, Parts parts, int first, int count) {
        if (byGroup[group] == null) {
            short[][] patterns = new short[count][];
            int at = group * parts.out() + first;
            for (int i = 0; i < count; i++) patterns[i] = levelPatterns(parts.zeros()[at + i], parts.scales()[at + i], 1 << bits);
            byGroup[group] = patterns;
        }
        return byGroup[group];
    }

    /** Each level's value {@code (level - zero) × scale} as the target's 16-bit pattern. */
    private short[] levelPatterns(int zero, float scale, int levels) {
        short[] patterns = new short[levels];
        for (int level = 0; level < levels; level++) patterns[level] = half((level - zero) * scale);
        return patterns;
    }

    /**
     * Fills {@code at[j]} with the (group × out + first) slot of input j of GPTQ word row {@code r};
     * whether all of the word's inputs share one group.
     */
    private boolean groupsOfWord(int[] groupOf, int r, int pack, int out, int first, int[] at) {
        boolean oneGroup = true;
        for (int j = 0; j < pack; j++) {
            at[j] = group(groupOf, r * pack + j) * out + first;
            oneGroup &= at[j] == at[0];
        }
        return oneGroup;
    }

    /**
     * The 4-bit weight {@code name} repacked as {@link Int4Weight} lays it out, for a backend that
     * multiplies by it as it is; empty where it is not of 4 bits or not whole tiles of 16 outputs ×
     * 64 inputs in groups of a multiple of 64 (it is then decoded, {@link #get}). Act-order groups
     * (GPTQ's g_idx) become runs of sorted inputs where each group holds group-size inputs.
     */
    @Override
    public Optional<Int4Weight> int4(String name) {
        if (bits != 4 || !decodes(name)) return Optional.empty();
        Parts parts = parts(name);
        int in = parts.in(), out = parts.out();
        int group = groupSize < 0 ? in : groupSize;
        if (!Int4Weight.fits(out, in, group)) return Optional.empty();
        int[] order = null;
        if (parts.groupOf() != null) {
            order = inputsByGroup(parts.groupOf(), parts.groups(), group);
            if (order == null) return Optional.empty();
            if (order.length == 0) order = null;
        }
        int groups = in / group;
        float[] scales = new float[out * groups], zeros = new float[out * groups];
        for (int n = 0; n < out; n++) {
            for (int g = 0; g < groups; g++) {
                scales[n * groups + g] = parts.scales()[g * out + n];
                zeros[n * groups + g] = parts.zeros()[g * out + n];
            }
        }
        Arena arena = Arena.ofShared();
        try {
            MemorySegment words = NativeMemory.unzeroed((long) out * in / 2, 16, arena);  // every block of rows written by repack
            int[] position = null;
            if (order != null) {
                position = new int[in];
                for (int packed = 0; packed < in; packed++) position[order[packed]] = packed;
            }
            int[] positions = position;
            IntStream.range(0, (out + ROWS_A_REPACK - 1) / ROWS_A_REPACK).parallel()
                    .forEach(block -> repack(parts, block * ROWS_A_REPACK, Math.min(ROWS_A_REPACK, out - block * ROWS_A_REPACK), positions, words));
            return Optional.of(new Int4Weight(name, out, in, group, words, scales, zeros, order, parts.qweight().file(), arena));
        } catch (RuntimeException | Error e) {
            arena.close();
            throw e;
        }
    }

    /** Output rows a task of {@link #repack} takes (whole tiles, and a multiple of AWQ's eight outputs a word). */
    private static final int ROWS_A_REPACK = 64;

    /** Writes rows {@code first .. first + count - 1} of the repacked words; {@code position[k]}: checkpoint input k's packed place (null: its own). */
    private void repack(Parts parts, int first, int count, int[] position, MemorySegment target) {
        int in = parts.in(), out = parts.out();
        MemorySegment source = parts.qweight().data();
        // Each row's levels in packed input order: checkpoint input k at position[k].
        byte[][] q = new byte[count][in];
        if (format == Format.AWQ) {
            int[] packed = new int[(count + 7) / 8];
            for (int k = 0; k < in; k++) {
                MemorySegment.copy(source, I32, ((long) k * (out / 8) + first / 8) * 4, packed, 0, packed.length);
                int at = position == null ? k : position[k];
                for (int i = 0; i < count; i++) q[i][at] = (byte) ((packed[i >>> 3] >>> (4 * AWQ_NIBBLE[i & 7])) & 0xf);
            }
        } else {
            int[] packed = new int[count];
            for (int r = 0; r < in / 8; r++) {
                MemorySegment.copy(source, I32, ((long) r * out + first) * 4, packed, 0, count);
                for (int i = 0; i < count; i++) {
                    for (int j = 0; j < 8; j++) q[i][position == null ? 8 * r + j : position[8 * r + j]] = (byte) ((packed[i] >>> (4 * j)) & 0xf);
                }
            }
        }
        // The block's row tiles' words are one run (Int4Weight's layout).
        int[] words = Int4Weight.packRows(in, q);
        MemorySegment.copy(words, 0, target, I32, (long) first * in / 8 * 4, words.length);
    }

    /**
     * The inputs sorted by group (stably), or null where some group does not hold exactly
     * {@code group} inputs; null too where the order is the inputs' own (g_idx without act-order).
     */
    private static int[] inputsByGroup(int[] groupOf, int groups, int group) {
        int[] count = new int[groups];
        for (int g : groupOf) count[g]++;
        for (int c : count) {
            if (c != group) return null;
        }
        int[] next = new int[groups];
        for (int g = 0; g < groups; g++) next[g] = g * group;
        int[] order = new int[groupOf.length];
        boolean identity = true;
        for (int k = 0; k < groupOf.length; k++) {
            int at = next[groupOf[k]]++;
            order[at] = k;
            identity &= at == k;
        }
        return identity ? new int[0] : order;
    }

    /** The group of input k: g_idx's entry where there is one, else k / group size. */
    private int group(int[] groupOf, int k) {
        return groupOf != null ? groupOf[k] : groupSize < 0 ? 0 : k / groupSize;
    }

    /** The zero of each (group, output), unpacked; AutoGPTQ's stored value + 1. */
    private int[] zerosOf(WeightTensor qzeros, int groups, int out, int pack, boolean awq) {
        int[] zeros = new int[Math.multiplyExact(groups, out)];
        int mask = (1 << bits) - 1, offset = format == Format.GPTQ ? 1 : 0;
        MemorySegment data = qzeros.data();
        for (int g = 0; g < groups; g++) {
            for (int o = 0; o < out; o++) {
                int packed = data.getAtIndex(I32, (long) g * (out / pack) + o / pack);
                int shift = awq ? 4 * AWQ_NIBBLE[o % 8] : bits * (o % pack);
                zeros[g * out + o] = ((packed >>> shift) & mask) + offset;
            }
        }
        return zeros;
    }

    /** GPTQ's {@code g_idx}, checked, or null where there is none (AWQ, or GPTQ without act-order). */
    private int[] groupOfEachInput(String prefix, int in, int groups) {
        if (format == Format.AWQ) return null;
        WeightTensor gIdx = inner.find(prefix + ".g_idx").orElse(null);
        if (gIdx == null) return null;
        if (gIdx.dtype() != DType.I32 || gIdx.rank() != 1 || gIdx.dim(0) != in) {
            throw new WeightsException("'" + gIdx.name() + "' should be I32 [" + in + "], one group an input, but is " + gIdx);
        }
        int[] groupOf = new int[in];
        for (int k = 0; k < in; k++) {
            groupOf[k] = gIdx.data().getAtIndex(I32, k);
            if (groupOf[k] < 0 || groupOf[k] >= groups) {
                throw new WeightsException("'" + gIdx.name() + "' puts input " + k + " in group " + groupOf[k] + " of " + groups);
            }
        }
        return groupOf;
    }

    private static WeightTensor int32Matrix(WeightTensor t) {
        if (t.dtype() != DType.I32 || t.rank() != 2) throw new WeightsException("packed tensor '" + t.name() + "' should be an I32 matrix, but is " + t);
        return t;
    }

    private static void expectShape(WeightTensor t, long[] shape, WeightTensor qweight) {
        if (!Arrays.equals(t.shape(), shape)) {
            throw new WeightsException("'" + t.name() + "' is " + Arrays.toString(t.shape()) + ", but '" + qweight.name() + "' "
                    + Arrays.toString(qweight.shape()) + " needs " + Arrays.toString(shape));
        }
    }
}
