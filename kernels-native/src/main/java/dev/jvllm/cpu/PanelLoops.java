package dev.jvllm.cpu;

/**
 * The register-tiled product of a few activation rows with one packed panel: the microkernel of
 * the matrix-matrix paths (many-token {@code linear}, encoder attention).
 *
 * <p>A panel holds {@link #width()} columns of a right-hand matrix stored depth-major
 * ({@code panel[k × width + j]} is column j at depth k), so each depth step is {@code width}
 * contiguous floats: the outer-product form, where every loaded panel vector serves
 * {@link #ROWS} rows of x (broadcast one element at a time) and no horizontal sums are needed.
 * The sums of a {@code ROWS × width} tile stay in registers across the whole depth (BLIS,
 * Van Zee and van de Geijn 2015).
 */
interface PanelLoops {

    /** Rows of x per call: six rows by two vectors is 12 sums, 2 panel vectors and a broadcast (fits 16 registers). */
    int ROWS = 6;

    /** Columns of a panel. */
    int width();

    /**
     * {@code out[r][j] = init[j] + Σ_{k < depth} x[r][k] · panel[k × width + j]} for
     * {@code r < rows} and all {@code j < width}, where row r of x starts at {@code xAt + r × xStride},
     * row r of out at {@code outAt + r × outStride}, and the panel at {@code panelAt}. Whole rows
     * of {@code width} are stored: a caller whose output is narrower multiplies into a scratch
     * tile. (Masked partial stores made the vector method too large for C2 to inline all of its
     * vector operations, and the ones left out allocate per call.)
     *
     * @param init {@code width} starting values from {@code initAt} (a bias, padded), or null for zeros
     * @param rows 1 to {@link #ROWS}; missing rows are computed and dropped
     */
    void multiply(float[] panel, int panelAt, int depth, float[] x, int xAt, int xStride, int rows,
                  float[] init, int initAt, float[] out, int outAt, int outStride);
}
