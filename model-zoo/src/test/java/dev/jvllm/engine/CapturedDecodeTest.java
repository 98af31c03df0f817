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
import dev.jvllm.spi.Tensor;
import dev.jvllm.weights.Checkpoint;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.function.IntFunction;
import java.util.function.Supplier;

import static dev.jvllm.engine.TinyLlamas.greedy;
import static dev.jvllm.engine.TinyLlamas.randomPrompts;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Decode steps on a backend that records passes (CUDA graphs) are padded to a few batch shapes.
 * Here the backend is the CPU one claiming to record, so the padded passes really run: their
 * tokens must be the unpadded passes' tokens.
 */
class CapturedDecodeTest {

    private static final int MAX_MODEL_LEN = 160;
    private static final int BLOCK = 16;

    private Backend cpu;
    private Checkpoint checkpoint;
    private ModelConfig config;
    private final List<CapturedDecode.Shape> shapes = new ArrayList<>();

    @BeforeEach
    void open() {
        Path dir = TinyLlamas.checkpoint("llama-gqa");
        config = ModelConfig.load(dir);
        checkpoint = Checkpoint.open(dir);
        cpu = Backends.create("cpu", new BackendOptions(1));
    }

    @AfterEach
    void close() {
        checkpoint.close();
        cpu.close();
    }

    /** The CPU backend, saying that it records passes and noting the shape of each pass it is given. */
    private Backend recordingBackend() {
        return recordingBackend(new ArrayList<>());
    }

    /** As {@link #recordingBackend()}, also noting each recorded pass's result in {@code results}. */
    private Backend recordingBackend(List<Tensor> results) {
        return TinyLlamas.withOverrides(cpu, Map.of(
                "capturesGraphs", args -> true,
                "runCaptured", args -> {
                    shapes.add((CapturedDecode.Shape) args[0]);
                    Tensor result = (Tensor) ((Supplier<?>) args[1]).get();
                    results.add(result);
                    return result;
                }));
    }

    private Map<String, List<Integer>> generate(Backend backend, boolean enforceEager, List<int[]> prompts,
                                                 SamplingParams params) {
        return generate(backend, enforceEager, prompts, i -> params, "r");
    }

    /** Request i (named prefix + i) generates with {@code params.apply(i)}; its tokens by name. */
    private Map<String, List<Integer>> generate(Backend backend, boolean enforceEager, List<int[]> prompts,
                                                IntFunction<SamplingParams> params, String prefix) {
        CausalLM model = ModelRegistry.find(config).load(new ModelContext(config, checkpoint, backend, MAX_MODEL_LEN));
        EngineConfig settings = new EngineConfig(MAX_MODEL_LEN, BLOCK, 1 << 20, 256, 64, false, 0L, "cpu", 1, 0.9,
                enforceEager);
        LLMEngine engine = new LLMEngine(model, backend, null, List.of(), MAX_MODEL_LEN, settings);
        for (int i = 0; i < prompts.size(); i++) engine.addRequest(prefix + i, prompts.get(i), params.apply(i));
        Map<String, List<Integer>> tokens = EngineRuns.finishedTokens(engine);
        engine.checkNoLeaks();
        return tokens;
    }

    @Test
    void paddedDecodeStepsGiveTheTokensOfUnpaddedOnes() {
        // Five requests (padded to 8), finishing at different steps (padded to 4, 2, 1), with
        // contexts crossing block boundaries (tables padded to 2, 4, 8 blocks).
        List<int[]> prompts = randomPrompts(3, 1, 7, 45, 3, 20);
        Map<String, List<Integer>> alone = new TreeMap<>();
        for (int i = 0; i < prompts.size(); i++) {
            alone.putAll(prefixed(i, generate(cpu, true, List.of(prompts.get(i)), greedy(20 + 15 * i))));
        }
        Map<String, List<Integer>> together = new TreeMap<>();
        generate(recordingBackend(), false, prompts, i -> greedy(20 + 15 * i), "r")
                .forEach((id, tokens) -> together.put(id.substring(1) + "/r0", tokens));
        assertEquals(alone, together);
        assertFalse(shapes.isEmpty(), "decode steps went through runCaptured");
        for (CapturedDecode.Shape shape : shapes) {
            assertTrue(List.of(1, 2, 4, 8).contains(shape.sequences()), shape::toString);
            assertEquals(1, Integer.bitCount(shape.blockTableEntries()), shape::toString);
        }
        assertTrue(shapes.stream().anyMatch(s -> s.sequences() == 8), "five sequences were padded to eight");
        assertTrue(shapes.stream().anyMatch(s -> s.blockTableEntries() == 8), "tables of five blocks were padded to eight");
    }

    private static Map<String, List<Integer>> prefixed(int prompt, Map<String, List<Integer>> outputs) {
        Map<String, List<Integer>> renamed = new TreeMap<>();
        outputs.forEach((id, tokens) -> renamed.put(prompt + "/" + id, tokens));
        return renamed;
    }

    @Test
    void enforceEagerRunsEveryStepAsItIs() {
        List<int[]> prompts = randomPrompts(4, 5, 9, 12);
        Map<String, List<Integer>> eager = generate(recordingBackend(), true, prompts, greedy(10));
        assertTrue(shapes.isEmpty(), "no step went through runCaptured: " + shapes);
        assertEquals(generate(cpu, true, prompts, greedy(10)), eager);
    }

    @Test
    void onlyDecodeStepsArePaddedAndTheirLogitsAreTheRealSequencesOnly() {
        List<Tensor> logits = new ArrayList<>();
        Backend backend = recordingBackend(logits);
        generate(backend, false, randomPrompts(5, 30, 3, 17), greedy(6));
        // Three sequences: a prompt step, then five decode steps padded to four.
        assertEquals(5, shapes.size(), shapes::toString);
        for (Tensor t : logits) assertEquals(4, t.rows(), "the padded pass computes four rows of logits");
    }
}
