package dev.jvllm.cpu;

import dev.jvllm.spi.ExpertWeights;

import java.lang.foreign.ValueLayout;
import java.util.Arrays;
import java.util.List;

/**
 * A mixture of experts' routing and grouped experts on the CPU. The experts' rows are grouped by
 * expert (a stable counting sort of the token choices), each expert runs its three products once
 * over all its rows with the multi-threaded {@link LinearKernel}, and each token's output is then
 * the weighted sum of its k results in the order of its choices, so the result does not depend
 * on how tokens were grouped.
 */
final class ExpertKernels {

    private static final int COMBINE_GRAIN = 1 << 15;

    /** The experts as their tensors. */
    record Experts(List<CpuTensor> gates, List<CpuTensor> ups, List<CpuTensor> downs, int hidden, int intermediate)
            implements ExpertWeights {
        Experts {
            gates = List.copyOf(gates);
            ups = List.copyOf(ups);
            downs = List.copyOf(downs);
        }

        @Override
        public int count() {
            return gates.size();
        }
    }

    private final InnerLoops loops;
    private final WorkerPool pool;
    private final LinearKernel linear;

    ExpertKernels(InnerLoops loops, WorkerPool pool, LinearKernel linear) {
        this.loops = loops;
        this.pool = pool;
        this.linear = linear;
    }

    /**
     * Softmax top-k per row, as ExpertRouter computes it on the host: softmax in double, the first
     * largest score chosen each time.
     */
    void routeSoftmaxTopK(CpuTensor logits, int topK, boolean normalize, CpuTensor experts, CpuTensor weights) {
        int numExperts = logits.cols();
        pool.forEach(logits.rows(), Math.max(1, COMBINE_GRAIN / numExperts), (first, end, worker) -> {
            float[] scores = new float[numExperts];
            for (int t = first; t < end; t++) {
                int row = logits.arrayIndex(t);
                float[] l = logits.floats();
                double max = Double.NEGATIVE_INFINITY;
                for (int e = 0; e < numExperts; e++) max = Math.max(max, l[row + e]);
                double total = 0;
                for (int e = 0; e < numExperts; e++) total += Math.exp(l[row + e] - max);
                for (int e = 0; e < numExperts; e++) scores[e] = (float) (Math.exp(l[row + e] - max) / total);
                float[] chosen = new float[topK];
                float sum = 0;
                for (int j = 0; j < topK; j++) {
                    int best = 0;
                    for (int e = 1; e < numExperts; e++) {
                        if (scores[e] > scores[best]) best = e;
                    }
                    chosen[j] = scores[best];
                    sum += scores[best];
                    scores[best] = Float.NEGATIVE_INFINITY;
                    experts.segment().setAtIndex(ValueLayout.JAVA_INT, (long) t * topK + j, best);
                }
                for (int j = 0; j < topK; j++) {
                    weights.floats()[weights.arrayIndex(t) + j] = normalize ? chosen[j] / (sum + 1e-20f) : chosen[j];
                }
            }
        });
    }

    void feedForward(CpuTensor x, Experts experts, CpuTensor expertIds, CpuTensor weights, CpuTensor out) {
        int tokens = x.rows(), k = expertIds.cols(), choices = tokens * k;
        int hidden = experts.hidden(), intermediate = experts.intermediate(), count = experts.count();
        // Counting sort of the choices by expert: choice c (token c / k) gets row slot[c].
        int[] starts = new int[count + 1];
        for (int c = 0; c < choices; c++) {
            int e = expertIds.index(c);
            if (e < 0 || e >= count) {
                throw new IndexOutOfBoundsException("expertFeedForward: expert " + e + " of token " + c / k
                        + " is outside the " + count + " experts");
            }
            starts[e + 1]++;
        }
        for (int e = 0; e < count; e++) starts[e + 1] += starts[e];
        int[] next = starts.clone();
        int[] slot = new int[choices];
        float[] grouped = new float[choices * hidden];
        for (int c = 0; c < choices; c++) {
            slot[c] = next[expertIds.index(c)]++;
            System.arraycopy(x.floats(), x.arrayIndex(c / k), grouped, slot[c] * hidden, hidden);
        }
        float[] gate = new float[choices * intermediate];
        float[] up = new float[choices * intermediate];
        float[] results = new float[choices * hidden];
        for (int e = 0; e < count; e++) {
            int first = starts[e], n = starts[e + 1] - first;
            if (n == 0) continue;
            CpuTensor input = CpuTensor.ofFloats(grouped, first * hidden, n, hidden, "expert input");
            CpuTensor gated = CpuTensor.ofFloats(gate, first * intermediate, n, intermediate, "expert gate");
            linear.run(input, experts.gates().get(e), null, gated);
            linear.run(input, experts.ups().get(e), null, CpuTensor.ofFloats(up, first * intermediate, n, intermediate, "expert up"));
            loops.siluMul(gate, first * intermediate, up, first * intermediate, gate, first * intermediate, n * intermediate);
            linear.run(gated, experts.downs().get(e), null, CpuTensor.ofFloats(results, first * hidden, n, hidden, "expert output"));
        }
        float[] target = out.floats();
        pool.forEach(tokens, Math.max(1, COMBINE_GRAIN / Math.max(1, hidden * k)), (first, end, worker) -> {
            for (int t = first; t < end; t++) {
                int row = out.arrayIndex(t);
                Arrays.fill(target, row, row + hidden, 0f);
                for (int j = 0; j < k; j++) {
                    float w = weights.get((long) t * k + j);
                    int from = slot[t * k + j] * hidden;
                    for (int h = 0; h < hidden; h++) target[row + h] += w * results[from + h];
                }
            }
        });
    }

    /** {@code out[t] += sigmoid(gate[t]) · source[t]}. */
    void addSigmoidGatedRows(CpuTensor source, CpuTensor gate, CpuTensor out) {
        int cols = source.cols();
        pool.forEach(source.rows(), Math.max(1, COMBINE_GRAIN / Math.max(1, cols)), (first, end, worker) -> {
            for (int t = first; t < end; t++) {
                float scale = (float) (1 / (1 + Math.exp(-gate.get(t))));
                int from = source.arrayIndex(t), to = out.arrayIndex(t);
                for (int c = 0; c < cols; c++) out.floats()[to + c] += scale * source.floats()[from + c];
            }
        });
    }
}
