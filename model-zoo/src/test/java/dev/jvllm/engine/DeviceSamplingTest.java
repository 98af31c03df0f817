package dev.jvllm.engine;

import dev.jvllm.EngineConfig;
import dev.jvllm.SamplingParams;
import dev.jvllm.config.ModelConfig;
import dev.jvllm.spi.Backend;
import dev.jvllm.spi.BackendOptions;
import dev.jvllm.spi.Backends;
import dev.jvllm.spi.CausalLM;
import dev.jvllm.spi.ModelContext;
import dev.jvllm.spi.ModelRegistry;
import dev.jvllm.weights.Checkpoint;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Function;

import static dev.jvllm.engine.TinyLlamas.greedy;
import static dev.jvllm.engine.TinyLlamas.randomPrompts;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Rows drawn where the logits are ({@link Backend#sampleRowsAsync}: temperature, min-p, top-k,
 * top-p, with the uniform number each sequence's generator gives) give the tokens the host's
 * sampler gives from the logits copied back, for seeded requests of every kind side by side, with
 * and without steps queued ahead. The CPU backend poses as one that samples on its device (it
 * draws on the host, as the default does, from the same uniforms), so the engine's path is the
 * one it takes on a GPU.
 */
class DeviceSamplingTest {

    private static final List<SamplingParams> PARAMS = List.of(
            SamplingParams.builder().temperature(0.8).seed(3).ignoreEos(true).maxTokens(18).build(),
            greedy(12),
            SamplingParams.builder().temperature(1.1).topP(0.7).seed(4).ignoreEos(true).maxTokens(20).build(),
            SamplingParams.builder().temperature(0.6).topK(5).minP(0.05).seed(5).ignoreEos(true).maxTokens(15).build(),
            SamplingParams.builder().temperature(1.0).topK(40).topP(0.9).seed(6).ignoreEos(true).maxTokens(22).build());

    private static Map<String, List<Integer>> generate(boolean onDevice, boolean queued, long[] launchedAhead) {
        Path dir = TinyLlamas.checkpoint("llama3-rope");
        ModelConfig config = ModelConfig.load(dir);
        try (Checkpoint checkpoint = Checkpoint.open(dir);
             Backend cpu = Backends.create("cpu", new BackendOptions(1))) {
            Map<String, Function<Object[], Object>> overrides = new HashMap<>();
            overrides.put("samplesOnDevice", args -> onDevice);
            overrides.put("queuesWork", args -> queued);
            Backend backend = TinyLlamas.withOverrides(cpu, overrides);
            CausalLM model = ModelRegistry.find(config).load(new ModelContext(config, checkpoint, backend, 128));
            EngineConfig settings = new EngineConfig(128, TinyLlamas.BLOCK_SIZE, 0, 256, 2048, true, null, "cpu", 1, 0.9,
                    false, true);
            try (LLMEngine engine = new LLMEngine(model, backend, null, List.of(), 128, settings)) {
                List<int[]> prompts = randomPrompts(21, 9, 30, 4, 22, 41);
                for (int i = 0; i < prompts.size(); i++) engine.addRequest("r" + i, prompts.get(i), PARAMS.get(i));
                Map<String, List<Integer>> tokens = EngineRuns.finishedTokens(engine);
                engine.checkNoLeaks();
                launchedAhead[0] = engine.stepsLaunchedAhead();
                return tokens;
            }
        }
    }

    @ParameterizedTest(name = "steps queued ahead {0}")
    @ValueSource(booleans = {false, true})
    void rowsDrawnOnTheDeviceGiveTheTokensOfTheHostsSampler(boolean queued) {
        long[] ahead = new long[1];
        Map<String, List<Integer>> host = generate(false, false, ahead);
        Map<String, List<Integer>> device = generate(true, queued, ahead);
        assertEquals(host, device);
        assertEquals(5, device.size());
        if (queued) assertTrue(ahead[0] > 10, "sampled steps were queued ahead: " + ahead[0]);
    }
}
