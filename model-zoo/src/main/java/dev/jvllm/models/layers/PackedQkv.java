package dev.jvllm.models.layers;

import dev.jvllm.spi.Tensor;

/**
 * The row order of a fused query/key/value projection: {@code groups} repetitions of a block of
 * {@code qRows} query rows, {@code kRows} key rows and {@code vRows} value rows. With one group the
 * fused weight is plain [q; k; v] and is sliced without copying; GPT-NeoX, BLOOM and Falcon
 * interleave per head or per key/value head, and those weights are reordered once at load.
 */
public record PackedQkv(int groups, int qRows, int kRows, int vRows) {

    /** [q; k; v] stacked (MPT, Baichuan's W_pack, Falcon's multi-query, ChatGLM). */
    public static PackedQkv blocks(int qRows, int kRows, int vRows) {
        return new PackedQkv(1, qRows, kRows, vRows);
    }

    /** [heads, 3, headDim]: each head's q, k and v rows together (GPT-NeoX, BLOOM, Falcon-7B style). */
    public static PackedQkv perHead(int heads, int headDim) {
        return new PackedQkv(heads, headDim, headDim, headDim);
    }

    /** [kvHeads, queriesPerKv + 2, headDim]: a key/value head's queries, then its key and value (InternLM2, Falcon-40B). */
    public static PackedQkv perKvHead(int kvHeads, int queriesPerKv, int headDim) {
        return new PackedQkv(kvHeads, queriesPerKv * headDim, headDim, headDim);
    }

    public int rows() {
        return groups * (qRows + kRows + vRows);
    }

    /** The q, k and v projections of {@code <name>.weight} [rows, in] (and {@code <name>.bias} when {@code bias}). */
    public Linear[] load(WeightScope scope, String name, int in, boolean bias) {
        WeightScope s = scope.forRowBlocks(qRows, kRows, vRows).child(name);
        if (groups == 1) {
            return split(s.tensor("weight", rows(), in), bias ? s.tensor("bias", rows()) : null, in);
        }
        Tensor[] w = reordered(s, "weight", in, false);
        Tensor[] b = bias ? reordered(s, "bias", 1, true) : new Tensor[3];
        return new Linear[]{
                new Linear(w[0], b[0], in, groups * qRows),
                new Linear(w[1], b[1], in, groups * kRows),
                new Linear(w[2], b[2], in, groups * vRows)};
    }

    /** The q, k and v projections of a loaded [q; k; v] weight (and bias vector, or null), as row views. */
    public Linear[] split(Tensor weight, Tensor bias, int in) {
        if (groups != 1) {
            throw new IllegalStateException("a layout of " + groups + " groups cannot be sliced without copying");
        }
        int[] starts = {0, qRows, qRows + kRows};
        int[] counts = {qRows, kRows, vRows};
        Linear[] out = new Linear[3];
        for (int i = 0; i < 3; i++) {
            Tensor b = bias == null ? null : bias.reshape(rows(), 1).rows(starts[i], counts[i]).reshape(1, counts[i]);
            out[i] = new Linear(weight.rows(starts[i], counts[i]), b, in, counts[i]);
        }
        return out;
    }

    /** q, k and v of {@code name} gathered group by group into three contiguous matrices. */
    private Tensor[] reordered(WeightScope scope, String name, int cols, boolean vector) {
        float[] all = vector ? scope.floats(name, rows()) : scope.floats(name, rows(), cols);
        int[] perGroup = {qRows, kRows, vRows};
        Tensor[] out = new Tensor[3];
        int offset = 0;
        for (int part = 0; part < 3; part++) {
            int n = perGroup[part];
            float[] values = new float[groups * n * cols];
            for (int g = 0; g < groups; g++) {
                int from = (g * (qRows + kRows + vRows) + offset) * cols;
                System.arraycopy(all, from, values, g * n * cols, n * cols);
            }
            out[part] = vector
                    ? scope.backend().constant(values, 1, groups * n)
                    : scope.backend().constant(values, groups * n, cols);
            offset += n;
        }
        return out;
    }
}
