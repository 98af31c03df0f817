package dev.jvllm.models.layers;

import dev.jvllm.spi.Backend;
import dev.jvllm.spi.BackendOptions;
import dev.jvllm.spi.Backends;
import dev.jvllm.spi.ExpertWeights;
import dev.jvllm.spi.Tensor;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

/**
 * The backend's routing and grouped experts against the host path they replace: ExpertRouter's
 * softmax top-k on logits read back, then each expert as a plain MLP over the rows routed to it,
 * gathered and scatter-added.
 */
class GroupedExpertsTest {

    private static final int HIDDEN = 24, INTERMEDIATE = 40;

    private Backend backend;
    private Scratch scratch;

    @BeforeEach
    void open() {
        backend = Backends.create("cpu", BackendOptions.defaults());
        scratch = new Scratch(backend);
    }

    @AfterEach
    void close() {
        backend.close();
    }

    private static float[] random(int n, long seed, float scale) {
        Random random = new Random(seed);
        float[] values = new float[n];
        for (int i = 0; i < n; i++) values[i] = (float) random.nextGaussian() * scale;
        return values;
    }

    @ParameterizedTest
    @CsvSource({"8, 2, 1, true", "8, 2, 13, false", "4, 4, 6, true", "60, 4, 9, false", "128, 8, 3, true"})
    void deviceRoutingChoosesTheHostRoutersExpertsAndWeights(int experts, int topK, int tokens, boolean normalize) {
        float[] logits = random(tokens * experts, experts + tokens, 2f);
        ExpertRouter.Routes host = ExpertRouter.softmaxTopK(experts, topK, normalize).route(logits, tokens);
        Tensor ids = backend.allocateIndices(tokens, topK);
        Tensor weights = backend.allocate(tokens, topK);
        backend.routeSoftmaxTopK(backend.constant(logits, tokens, experts), topK, normalize, ids, weights);
        float[] chosen = backend.toFloatArray(ids);
        int[] chosenIds = new int[chosen.length];
        for (int i = 0; i < chosen.length; i++) chosenIds[i] = (int) chosen[i];
        assertArrayEquals(host.experts(), chosenIds);
        assertArrayEquals(host.weights(), backend.toFloatArray(weights), 1e-6f);
    }

    @Test
    void tiedLogitsGoToTheFirstExpertAsOnTheHost() {
        float[] logits = {1, 3, 3, 0, 3};
        Tensor ids = backend.allocateIndices(1, 2);
        backend.routeSoftmaxTopK(backend.constant(logits, 1, 5), 2, true, ids, backend.allocate(1, 2));
        assertArrayEquals(new float[]{1, 2}, backend.toFloatArray(ids));
    }

    @ParameterizedTest
    @CsvSource({"8, 2, 1", "8, 2, 13", "4, 1, 7", "6, 3, 11", "3, 3, 5"})
    void groupedExpertsEqualEachExpertRunOverItsRows(int experts, int topK, int tokens) {
        float[] logits = random(tokens * experts, 5L * experts + tokens, 1.5f);
        assertGroupedEqualsPerExpert(experts, topK, tokens, logits);
    }

    @Test
    void tokensAllRoutedToOneExpertGiveThatExpertsOutputTimesItsWeight() {
        int experts = 5, tokens = 9;
        float[] logits = random(tokens * experts, 77, 1f);
        for (int t = 0; t < tokens; t++) logits[t * experts + 3] += 50;
        assertGroupedEqualsPerExpert(experts, 2, tokens, logits);
    }

    private void assertGroupedEqualsPerExpert(int experts, int topK, int tokens, float[] logits) {
        List<GatedMlp> mlps = new ArrayList<>();
        for (int e = 0; e < experts; e++) {
            mlps.add(new GatedMlp(
                    new Linear(backend.constant(random(INTERMEDIATE * HIDDEN, 100 + e, 0.3f), INTERMEDIATE, HIDDEN), null, HIDDEN, INTERMEDIATE),
                    new Linear(backend.constant(random(INTERMEDIATE * HIDDEN, 200 + e, 0.3f), INTERMEDIATE, HIDDEN), null, HIDDEN, INTERMEDIATE),
                    new Linear(backend.constant(random(HIDDEN * INTERMEDIATE, 300 + e, 0.3f), HIDDEN, INTERMEDIATE), null, INTERMEDIATE, HIDDEN)));
        }
        Tensor x = backend.constant(random(tokens * HIDDEN, 9, 1f), tokens, HIDDEN);
        ExpertRouter.Routes routes = ExpertRouter.softmaxTopK(experts, topK, true).route(logits, tokens);

        Tensor expected = backend.constant(new float[tokens * HIDDEN], tokens, HIDDEN);
        for (int e = 0; e < experts; e++) {
            List<Integer> rows = new ArrayList<>();
            List<Float> weights = new ArrayList<>();
            for (int c = 0; c < tokens * topK; c++) {
                if (routes.experts()[c] != e) continue;
                rows.add(c / topK);
                weights.add(routes.weights()[c]);
            }
            if (rows.isEmpty()) continue;
            int n = rows.size();
            Tensor indices = backend.indices(rows.stream().mapToInt(Integer::intValue).toArray());
            Tensor routed = backend.allocate(n, HIDDEN);
            Tensor result = backend.allocate(n, HIDDEN);
            backend.gatherRows(x, indices, routed);
            mlps.get(e).forward(backend, routed, scratch, result);
            float[] w = new float[n];
            for (int i = 0; i < n; i++) w[i] = weights.get(i);
            backend.scatterAddRows(result, indices, backend.constant(w, 1, n), expected);
        }

        ExpertWeights set = backend.expertWeights(mlps.stream().map(m -> m.gate().weight()).toList(),
                mlps.stream().map(m -> m.up().weight()).toList(), mlps.stream().map(m -> m.down().weight()).toList());
        Tensor out = backend.allocate(tokens, HIDDEN);
        backend.expertFeedForward(x, set, backend.indices(routes.experts()).reshape(tokens, topK),
                backend.stepValues(routes.weights(), tokens, topK), out);
        assertArrayEquals(backend.toFloatArray(expected), backend.toFloatArray(out), 1e-5f);
    }

    @Test
    void sigmoidGatedRowsAddEachRowScaledByTheSigmoidOfItsGate() {
        Tensor out = backend.constant(new float[]{1, 2, 3, 4}, 2, 2);
        backend.addSigmoidGatedRows(backend.constant(new float[]{10, 20, 30, 40}, 2, 2),
                backend.constant(new float[]{0, (float) Math.log(3)}, 2, 1), out);
        assertArrayEquals(new float[]{6, 12, 3 + 22.5f, 4 + 30}, backend.toFloatArray(out), 1e-5f);
    }
}
