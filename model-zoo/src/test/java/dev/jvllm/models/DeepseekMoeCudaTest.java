package dev.jvllm.models;

import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;

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
        DeepseekMoeTest.assertMixtralsLogitsBeforeItsWindow(DeepseekMoeTest.mixtralAsDeepseek(temp.resolve("routed"), true, false), "cuda");
        DeepseekMoeTest.assertMixtralsLogitsBeforeItsWindow(DeepseekMoeTest.mixtralAsDeepseek(temp.resolve("shared"), true, true), "cuda");
    }
}
