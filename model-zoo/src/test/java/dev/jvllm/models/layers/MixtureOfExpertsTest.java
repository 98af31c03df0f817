package dev.jvllm.models.layers;

import dev.jvllm.models.layers.MixtureOfExperts.ExpertNames;
import dev.jvllm.spi.Backend;
import dev.jvllm.spi.BackendOptions;
import dev.jvllm.spi.Backends;
import dev.jvllm.spi.Tensor;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** A mixture of experts against the plain MLPs it is made of. */
class MixtureOfExpertsTest {

    private static final int HIDDEN = 16, INTERMEDIATE = 24, TOKENS = 7;

    private Backend backend;
    private RandomCheckpoint checkpoint;
    private Scratch scratch;

    @BeforeEach
    void open() {
        backend = Backends.create("cpu", BackendOptions.defaults());
        checkpoint = new RandomCheckpoint(7);
        scratch = new Scratch(backend);
    }

    @AfterEach
    void close() {
        checkpoint.close();
        backend.close();
    }

    private WeightScope scope() {
        return WeightScope.root(checkpoint, backend);
    }

    private void expert(String prefix) {
        checkpoint.random(prefix + ".gate_proj.weight", 0.3, INTERMEDIATE, HIDDEN);
        checkpoint.random(prefix + ".up_proj.weight", 0.3, INTERMEDIATE, HIDDEN);
        checkpoint.random(prefix + ".down_proj.weight", 0.3, HIDDEN, INTERMEDIATE);
    }

    private Tensor input() {
        float[] x = new float[TOKENS * HIDDEN];
        java.util.Random random = new java.util.Random(3);
        for (int i = 0; i < x.length; i++) x[i] = (float) random.nextGaussian();
        return backend.constant(x, TOKENS, HIDDEN);
    }

    private float[] run(FeedForward ffn, Tensor x) {
        Tensor out = backend.allocate(TOKENS, HIDDEN);
        ffn.forward(backend, x, scratch, out);
        return backend.toFloatArray(out);
    }

    private GatedMlp mlp(String prefix) {
        return MixtureOfExperts.loadExpert(scope().child(prefix), HIDDEN, INTERMEDIATE, ExpertNames.LLAMA);
    }

    @Test
    void oneExpertChosenAlwaysEqualsThatExpertAsAPlainMlp() {
        checkpoint.random("mlp.gate.weight", 0.3, 1, HIDDEN);
        expert("mlp.experts.0");
        var moe = MixtureOfExperts.load(scope().child("mlp"), ExpertRouter.softmaxTopK(1, 1, true), HIDDEN, INTERMEDIATE,
                ExpertNames.LLAMA);
        Tensor x = input();
        assertArrayEquals(run(mlp("mlp.experts.0"), x), run(moe, x), 1e-6f);
    }

    @Test
    void eachTokenGetsTheRouterWeightedSumOfItsTopTwoExperts() {
        float[] router = checkpoint.random("mlp.gate.weight", 0.5, 4, HIDDEN);
        for (int e = 0; e < 4; e++) expert("mlp.experts." + e);
        ExpertRouter routing = ExpertRouter.softmaxTopK(4, 2, true);
        var moe = MixtureOfExperts.load(scope().child("mlp"), routing, HIDDEN, INTERMEDIATE, ExpertNames.LLAMA);
        Tensor x = input();
        float[] xs = backend.toFloatArray(x);
        float[][] each = new float[4][];
        for (int e = 0; e < 4; e++) each[e] = run(mlp("mlp.experts." + e), x);

        float[] logits = new float[TOKENS * 4];
        for (int t = 0; t < TOKENS; t++) {
            for (int e = 0; e < 4; e++) {
                for (int i = 0; i < HIDDEN; i++) logits[t * 4 + e] += router[e * HIDDEN + i] * xs[t * HIDDEN + i];
            }
        }
        ExpertRouter.Routes routes = routing.route(logits, TOKENS);
        float[] expected = new float[TOKENS * HIDDEN];
        boolean[] used = new boolean[4];
        for (int t = 0; t < TOKENS; t++) {
            for (int j = 0; j < 2; j++) {
                int e = routes.experts()[t * 2 + j];
                used[e] = true;
                for (int i = 0; i < HIDDEN; i++) expected[t * HIDDEN + i] += routes.weights()[t * 2 + j] * each[e][t * HIDDEN + i];
            }
        }
        assertTrue(used[0] && used[1] && used[2] && used[3], "every expert should serve some token of the test");
        assertArrayEquals(expected, run(moe, x), 1e-5f);
    }

    @Test
    void stackedExpertTensorsGiveTheSameOutputAsOneModulePerExpert() {
        float[] router = checkpoint.random("mlp.gate.weight", 0.5, 3, HIDDEN);
        float[] gateUp = new float[3 * 2 * INTERMEDIATE * HIDDEN];
        float[] down = new float[3 * HIDDEN * INTERMEDIATE];
        int block = INTERMEDIATE * HIDDEN;
        for (int e = 0; e < 3; e++) {
            expert("mlp.experts." + e);
            System.arraycopy(checkpoint.values("mlp.experts." + e + ".gate_proj.weight"), 0, gateUp, 2 * e * block, block);
            System.arraycopy(checkpoint.values("mlp.experts." + e + ".up_proj.weight"), 0, gateUp, (2 * e + 1) * block, block);
            System.arraycopy(checkpoint.values("mlp.experts." + e + ".down_proj.weight"), 0, down, e * block, block);
        }
        checkpoint.put("fused.gate.weight", router, 3, HIDDEN);
        checkpoint.put("fused.experts.gate_up_proj", gateUp, 3, 2 * INTERMEDIATE, HIDDEN);
        checkpoint.put("fused.experts.down_proj", down, 3, HIDDEN, INTERMEDIATE);
        ExpertRouter routing = ExpertRouter.softmaxTopK(3, 2, false);
        Tensor x = input();
        float[] perModule = run(MixtureOfExperts.load(scope().child("mlp"), routing, HIDDEN, INTERMEDIATE, ExpertNames.LLAMA), x);
        float[] stacked = run(MixtureOfExperts.load(scope().child("fused"), routing, HIDDEN, INTERMEDIATE, ExpertNames.LLAMA), x);
        assertArrayEquals(perModule, stacked, 1e-6f);
    }

    @Test
    void aGatedSharedExpertAddsItsOutputTimesTheSigmoidOfItsGate() {
        checkpoint.random("mlp.gate.weight", 0.5, 2, HIDDEN);
        expert("mlp.experts.0");
        expert("mlp.experts.1");
        expert("mlp.shared_expert");
        float[] gate = checkpoint.random("mlp.shared_expert_gate.weight", 0.5, 1, HIDDEN);
        ExpertRouter routing = ExpertRouter.softmaxTopK(2, 1, true);
        Tensor x = input();
        float[] routedOnly = run(MixtureOfExperts.load(scope().child("mlp"), routing, HIDDEN, INTERMEDIATE, ExpertNames.LLAMA), x);
        float[] shared = run(mlp("mlp.shared_expert"), x);
        var withShared = MixtureOfExperts.load(scope().child("mlp"), routing, HIDDEN, INTERMEDIATE, ExpertNames.LLAMA)
                .withSharedExpert(mlp("mlp.shared_expert"), Linear.load(scope().child("mlp"), "shared_expert_gate", HIDDEN, 1, false));
        float[] xs = backend.toFloatArray(x);
        float[] expected = new float[TOKENS * HIDDEN];
        for (int t = 0; t < TOKENS; t++) {
            double g = 0;
            for (int i = 0; i < HIDDEN; i++) g += gate[i] * xs[t * HIDDEN + i];
            double sigmoid = 1 / (1 + Math.exp(-g));
            for (int i = 0; i < HIDDEN; i++) {
                expected[t * HIDDEN + i] = (float) (routedOnly[t * HIDDEN + i] + sigmoid * shared[t * HIDDEN + i]);
            }
        }
        assertArrayEquals(expected, run(withShared, x), 1e-5f);
    }
}
