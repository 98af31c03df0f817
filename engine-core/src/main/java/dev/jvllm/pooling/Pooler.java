package dev.jvllm.pooling;

/**
 * The arithmetic of pooling, on the heap: one vector from an input's token states, then
 * Matryoshka truncation and L2 normalization (in that order, as vLLM does).
 */
public final class Pooler {

    private Pooler() {
    }

    /**
     * Pools the {@code count} token states of one input: one row, or for {@link PoolingType#ALL} its
     * {@code count} rows, row-major.
     *
     * @param states row-major [*, hidden] states; the input's tokens are rows {@code [first, first + count)}
     */
    public static float[] pool(PoolingType type, float[] states, int first, int count, int hidden) {
        if (count <= 0) throw new IllegalArgumentException("cannot pool an input of " + count + " tokens");
        if (type == PoolingType.ALL) return java.util.Arrays.copyOfRange(states, first * hidden, (first + count) * hidden);
        float[] out = new float[hidden];
        switch (type) {
            case CLS -> System.arraycopy(states, first * hidden, out, 0, hidden);
            case LAST -> System.arraycopy(states, (first + count - 1) * hidden, out, 0, hidden);
            case MEAN -> {
                double[] sum = new double[hidden];
                for (int t = first; t < first + count; t++) {
                    for (int i = 0; i < hidden; i++) sum[i] += states[t * hidden + i];
                }
                for (int i = 0; i < hidden; i++) out[i] = (float) (sum[i] / count);
            }
            case ALL -> throw new AssertionError("returned above");
        }
        return out;
    }

    /** The first {@code dimensions} elements (all when {@code dimensions} is 0), L2-normalized when asked. */
    public static float[] finish(float[] pooled, int dimensions, boolean normalize) {
        float[] out = dimensions > 0 && dimensions < pooled.length ? java.util.Arrays.copyOf(pooled, dimensions) : pooled;
        if (normalize) {
            double norm = 0;
            for (float v : out) norm += (double) v * v;
            // As torch.nn.functional.normalize: the norm is clamped so a zero vector stays zero.
            double scale = 1.0 / Math.max(Math.sqrt(norm), 1e-12);
            for (int i = 0; i < out.length; i++) out[i] = (float) (out[i] * scale);
        }
        return out;
    }
}
