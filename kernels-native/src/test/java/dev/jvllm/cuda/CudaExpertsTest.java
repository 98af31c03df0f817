package dev.jvllm.cuda;

import dev.jvllm.spi.Backend;
import dev.jvllm.spi.ExpertWeights;
import dev.jvllm.spi.Tensor;
import dev.jvllm.weights.DType;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.EnumSource;

import java.util.ArrayList;
import java.util.List;

import static dev.jvllm.cuda.CudaTestData.*;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;

/**
 * The mixture-of-experts kernels (moe.cu) against the CPU backend's: routing, the grouped experts
 * through the matrix-vector kernels (decode batches, any type; unaligned widths element by
 * element) and through the tensor-core tiles (16-bit batches above 8 tokens), and the gated
 * shared-expert add. Float32 within 1e-5, 16-bit types within 2e-2, on the same rounded inputs.
 * Skipped where no GPU is found.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class CudaExpertsTest extends GpuAgainstCpuTest {

    @Override
    List<DType> activationTypes() {
        return List.of(DType.F32, DType.BF16, DType.F16);
    }

    @ParameterizedTest
    @CsvSource({"F32, 1, 8, 2, true", "F32, 33, 60, 4, false", "BF16, 5, 8, 2, true", "F16, 17, 128, 8, false",
            "BF16, 3, 256, 8, true", "F32, 4, 3, 3, true"})
    void softmaxTopKRoutingChoosesTheCpusExpertsWithItsWeights(DType type, int tokens, int experts, int topK,
                                                                boolean normalize) {
        float[] logits = roundTo(type, random(tokens * experts, 11));
        int[][] ids = new int[2][];
        float[][] weights = new float[2][];
        Backend[] backends = {cpu, gpus.get(type)};
        for (int i = 0; i < 2; i++) {
            Backend b = backends[i];
            Tensor chosen = b.allocateIndices(tokens, topK);
            Tensor w = b.allocate(tokens, topK);
            b.routeSoftmaxTopK(activations(b, logits, tokens, experts), topK, normalize, chosen, w);
            ids[i] = toInts(b.toFloatArray(chosen));
            weights[i] = b.toFloatArray(w);
        }
        assertArrayEquals(ids[0], ids[1], type + " expert choices");
        assertClose(type + " routing weights", weights[0], weights[1], tolerance(type));
    }

    /**
     * Up to 8 tokens take the matrix-vector kernels (hidden 20 is not a whole number of 16-byte
     * pieces: element by element), and float32 batches of any size; 16-bit batches above take the
     * tiles, hidden 72 and intermediate 136 leaving partial tiles.
     */
    @ParameterizedTest
    @CsvSource({"F32, 1, 8, 2, 64, 96", "F32, 6, 4, 2, 20, 12", "F32, 130, 8, 2, 64, 40",
            "BF16, 1, 8, 2, 64, 96", "F16, 37, 6, 3, 64, 40", "BF16, 5, 4, 1, 20, 12",
            "BF16, 8, 8, 2, 64, 96", "BF16, 9, 8, 2, 64, 96",
            "BF16, 200, 8, 2, 72, 136", "F16, 150, 4, 3, 64, 64"})
    void groupedExpertsMatchCpu(DType type, int tokens, int experts, int topK, int hidden, int intermediate) {
        float[] logits = random(tokens * experts, 21);
        assertGroupedExpertsMatchCpu(type, tokens, experts, topK, hidden, intermediate, logits);
    }

    /** Every token routed to expert 2 first: one expert gets all rows (several tiles), others none. */
    @ParameterizedTest
    @CsvSource({"F32, 9", "BF16, 9", "BF16, 200", "F16, 140"})
    void tokensAllRoutedToOneExpertMatchCpu(DType type, int tokens) {
        int experts = 5;
        float[] logits = random(tokens * experts, 31);
        for (int t = 0; t < tokens; t++) logits[t * experts + 2] += 100;
        assertGroupedExpertsMatchCpu(type, tokens, experts, 2, 64, 48, logits);
    }

    private void assertGroupedExpertsMatchCpu(DType type, int tokens, int experts, int topK, int hidden,
                                              int intermediate, float[] logits) {
        float[] x = roundTo(type, random(tokens * hidden, 22));
        float[] gateUp = random(experts * 2 * intermediate * hidden, 23);
        for (int i = 0; i < gateUp.length; i++) gateUp[i] *= 0.2f;
        float[] down = random(experts * hidden * intermediate, 24);
        for (int i = 0; i < down.length; i++) down[i] *= 0.2f;
        // Routed on the CPU, so that both backends run the same choices.
        Tensor chosen = cpu.allocateIndices(tokens, topK);
        Tensor routeWeights = cpu.allocate(tokens, topK);
        cpu.routeSoftmaxTopK(cpu.constant(logits, tokens, experts), topK, true, chosen, routeWeights);
        int[] ids = toInts(cpu.toFloatArray(chosen));
        float[] weights = cpu.toFloatArray(routeWeights);
        // The GPU twice: large batches by per-expert cuBLAS products (eager passes), then by
        // moe.cu's tensor-core tiles (what a CUDA graph captures).
        float[][] results = new float[3][];
        CudaBackend gpu = gpus.get(type);
        Backend[] backends = {cpu, gpu, gpu};
        for (int i = 0; i < 3; i++) {
            Backend b = backends[i];
            gpu.useExpertTilesForLargeBatches(i == 2);
            Tensor stackedGateUp = b.weight(weight(arena, "gate_up", type, gateUp, experts * 2 * intermediate, hidden));
            Tensor stackedDown = b.weight(weight(arena, "down", type, down, experts * hidden, intermediate));
            List<Tensor> gates = new ArrayList<>(), ups = new ArrayList<>(), downs = new ArrayList<>();
            for (int e = 0; e < experts; e++) {
                gates.add(stackedGateUp.rows(2 * intermediate * e, intermediate));
                ups.add(stackedGateUp.rows(2 * intermediate * e + intermediate, intermediate));
                downs.add(stackedDown.rows(hidden * e, hidden));
            }
            ExpertWeights set = b.expertWeights(gates, ups, downs);
            Tensor out = b.allocate(tokens, hidden);
            b.expertFeedForward(activations(b, x, tokens, hidden), set, b.indices(ids).reshape(tokens, topK),
                    b.stepValues(weights, tokens, topK), out);
            results[i] = b.toFloatArray(out);
        }
        gpu.useExpertTilesForLargeBatches(false);
        assertClose(type + " grouped experts of " + tokens + " tokens", results[0], results[1], tolerance(type));
        assertClose(type + " grouped experts of " + tokens + " tokens, tensor-core tiles", results[0], results[2],
                tolerance(type));
    }

    @ParameterizedTest
    @EnumSource(value = DType.class, names = {"F32", "BF16", "F16"})
    void sigmoidGatedRowsAddMatchesCpu(DType type) {
        float[] base = roundTo(type, random(7 * 40, 41));
        float[] source = roundTo(type, random(7 * 40, 42));
        float[] gate = roundTo(type, random(7, 43));
        float[][] results = new float[2][];
        Backend[] backends = {cpu, gpus.get(type)};
        for (int i = 0; i < 2; i++) {
            Backend b = backends[i];
            Tensor out = activations(b, base, 7, 40);
            b.addSigmoidGatedRows(activations(b, source, 7, 40), activations(b, gate, 7, 1), out);
            results[i] = b.toFloatArray(out);
        }
        assertClose(type + " sigmoid-gated add", results[0], results[1], tolerance(type));
    }

    private static int[] toInts(float[] values) {
        int[] out = new int[values.length];
        for (int i = 0; i < values.length; i++) out[i] = (int) values[i];
        return out;
    }
}
