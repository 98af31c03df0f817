package dev.jvllm.spi;

/**
 * The shape rules of the {@link Backend} kernels that every backend checks the same way, so that a
 * wrong call fails with the same message on each.
 */
public final class KernelShapes {

    private KernelShapes() {
    }

    /** {@link Backend#scatterAddRows}: one row index and one weight per source row, out as wide as source. */
    public static void checkScatterAddRows(Tensor source, Tensor rows, Tensor weights, Tensor out) {
        int count = source.rows();
        if (rows.elementCount() != count || weights.elementCount() != count || out.cols() != source.cols()) {
            throw new IllegalArgumentException("scatterAddRows: " + source + " needs one row index and one weight per row ("
                    + rows + ", " + weights + ") and out " + out + " of " + source.cols() + " columns");
        }
    }

    /** {@link Backend#headwiseLinear}: x and weight split into heads, out [T, heads × outPerHead]; returns outPerHead. */
    public static int checkHeadwiseLinear(Tensor x, Tensor weight, int heads, Tensor out) {
        if (heads <= 0 || x.cols() % heads != 0 || weight.rows() % heads != 0) {
            throw new IllegalArgumentException("headwiseLinear: x " + x + " and weight " + weight
                    + " do not split into " + heads + " heads");
        }
        int in = x.cols() / heads;
        int outPerHead = weight.rows() / heads;
        if (weight.cols() != in || out.rows() != x.rows() || out.cols() != heads * outPerHead) {
            throw new IllegalArgumentException("headwiseLinear: weight " + weight + " must take " + in
                    + " features per head and out " + out + " be " + x.rows() + " × " + heads * outPerHead);
        }
        return outPerHead;
    }
}
