package dev.jvllm.cpu;

/** {@link PanelLoops} in plain Java: the fallback without the Vector API, and the statement of the sum. */
final class ScalarPanelLoops implements PanelLoops {

    private static final int WIDTH = 8;

    @Override
    public int width() {
        return WIDTH;
    }

    @Override
    public void multiply(float[] panel, int panelAt, int depth, float[] x, int xAt, int xStride, int rows,
                         float[] init, int initAt, float[] out, int outAt, int outStride) {
        for (int r = 0; r < rows; r++) {
            int xRow = xAt + r * xStride;
            for (int j = 0; j < WIDTH; j++) {
                float sum = init == null ? 0f : init[initAt + j];
                for (int k = 0; k < depth; k++) {
                    sum += x[xRow + k] * panel[panelAt + k * WIDTH + j];
                }
                out[outAt + r * outStride + j] = sum;
            }
        }
    }
}
