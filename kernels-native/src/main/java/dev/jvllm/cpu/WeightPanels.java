package dev.jvllm.cpu;

/**
 * A weight matrix W [columns, depth] (a linear layer's [out, in]) rearranged for
 * {@link PanelLoops}: consecutive panels of {@code width} weight rows, each stored depth-major
 * ({@code values[p × width × depth + k × width + j] = W[p × width + j][k]}), the last padded with
 * zeros. Float32 whatever the checkpoint type, so it costs {@code 4 × depth} bytes per padded row.
 */
record WeightPanels(float[] values, int width, int depth, int columns) {

    /** The most bytes of panels one Java array holds. */
    static final long MAX_BYTES = (Integer.MAX_VALUE - 8L) * Float.BYTES;

    /** Bytes of the panels of a {@code rows × cols} weight. */
    static long bytes(int rows, int cols, int width) {
        return (long) panelCount(rows, width) * width * cols * Float.BYTES;
    }

    /** Packs {@code weight}, its panels split over the workers. */
    static WeightPanels pack(CpuTensor weight, int width, WeightLoops loops, WorkerPool pool) {
        int columns = weight.rows();
        int depth = weight.cols();
        float[] values = new float[panelCount(columns, width) * width * depth];
        pool.forEach(panelCount(columns, width), 1, (first, end, worker) -> {
            float[] row = pool.scratch(worker).weights(depth);
            for (int p = first; p < end; p++) {
                for (int j = 0; j < width && p * width + j < columns; j++) {
                    loops.widen(weight.segment(), weight.rowStart(p * width + j), row, 0, depth);
                    int at = p * width * depth + j;
                    for (int k = 0; k < depth; k++) {
                        values[at + k * width] = row[k];
                    }
                }
            }
        });
        return new WeightPanels(values, width, depth, columns);
    }

    private static int panelCount(int columns, int width) {
        return (columns + width - 1) / width;
    }

    int count() {
        return panelCount(columns, width);
    }

    /** Where panel {@code p} starts in {@link #values}. */
    int offset(int p) {
        return p * width * depth;
    }
}
