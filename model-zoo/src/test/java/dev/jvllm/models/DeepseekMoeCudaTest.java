package dev.jvllm.models;

import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@link DeepseekMoeTest} on the GPU in float32: DeepSeek-MoE's routed layers (softmax top k routed on
 * the device) with and without a shared expert give Mixtral's Transformers logits. Skipped, with the
 * reason, where there is no GPU.
 */
class DeepseekMoeCudaTest {

    @TempDir
    Path temp;

    @BeforeEach
    void requireGpu() {
        RuntimeAssumptions.requireGpu();
    }

    @Test
    void routedLayersThatRenormalizeTheirTopTwoAreMixtrals() {
        DeepseekMoeTest.assertMixtralsLogitsBeforeItsWindow(DeepseekMoeTest.mixtralAsDeepseek(temp.resolve("routed"), true, DeepseekMoeTest.SharedExpert.NONE), "cuda");
        DeepseekMoeTest.assertMixtralsLogitsBeforeItsWindow(DeepseekMoeTest.mixtralAsDeepseek(temp.resolve("shared"), true, DeepseekMoeTest.SharedExpert.ZERO), "cuda");
    }

    /** A shared expert that adds something (routed expert 3's weights), unnormalized routing: the GPU's logits are the CPU's. */
    @Test
    void sharedExpertsAndUnnormalizedWeightsGiveTheCpusLogits() {
        Golden model = DeepseekMoeTest.mixtralAsDeepseek(temp.resolve("added"), false, DeepseekMoeTest.SharedExpert.EXPERT_3);
        float[][][] cpu = GoldenChecks.prefillLogits(model.directory(), model.prompts(), "cpu");
        float[][][] cuda = GoldenChecks.prefillLogits(model.directory(), model.prompts(), "cuda");
        for (int i = 0; i < cpu.length; i++) {
            for (int p = 0; p < cpu[i].length; p++) {
                double err = 0, norm = 0;
                for (int v = 0; v < cpu[i][p].length; v++) {
                    err += Math.pow(cuda[i][p][v] - cpu[i][p][v], 2);
                    norm += (double) cpu[i][p][v] * cpu[i][p][v];
                }
                double relative = Math.sqrt(err / norm);
                assertTrue(relative < 1e-4, "prompt " + i + " position " + p + ": relative logit error " + relative);
            }
        }
    }
}
