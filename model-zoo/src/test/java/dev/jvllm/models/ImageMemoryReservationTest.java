package dev.jvllm.models;

import dev.jvllm.EngineConfig;
import dev.jvllm.ImageInput;
import dev.jvllm.RequestOutput;
import dev.jvllm.SamplingParams;
import dev.jvllm.config.ModelConfig;
import dev.jvllm.engine.LLMEngine;
import dev.jvllm.spi.Backend;
import dev.jvllm.spi.BackendOptions;
import dev.jvllm.spi.Backends;
import dev.jvllm.spi.CausalLM;
import dev.jvllm.spi.DeviceMemory;
import dev.jvllm.spi.ModelContext;
import dev.jvllm.spi.ModelRegistry;
import dev.jvllm.weights.Checkpoint;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * On a device, a vision model's image buffers (the kept features, the vision tower's largest pass)
 * are allocated before the KV cache takes the memory left, so that serving images allocates nothing
 * more (a step's allocation past the reservation would run the device out of memory mid-step, as vLLM's
 * profiling with its largest multimodal inputs prevents). The device is the CPU backend claiming a
 * device memory and counting what is allocated.
 */
class ImageMemoryReservationTest {

    private static final int MAX_MODEL_LEN = 256;

    String device() {
        return "cpu";
    }

    ImageInput image(java.nio.file.Path png) {
        return VisionGoldens.decoded(png);
    }

    /**
     * The backend recording each allocation's rows × cols; the CPU's claims a device of 8 of 16 GiB
     * free (a GPU's reports its own).
     */
    private Backend recordingDevice(Backend cpu, List<String> allocations) {
        Map<String, java.util.function.Function<Object[], Object>> overrides = new HashMap<>();
        if (device().equals("cpu")) overrides.put("deviceMemory", args -> Optional.of(new DeviceMemory(8L << 30, 16L << 30)));
        overrides.put("allocate", args -> {
            allocations.add(args[0] + " × " + args[1]);
            return cpu.allocate((int) args[0], (int) args[1]);
        });
        return dev.jvllm.engine.TinyLlamas.withOverrides(cpu, overrides);
    }

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"llava-default", "llava-next", "internvl-qwen2", "qwen2-vl", "qwen2.5-vl", "phi3v"})
    void servingTheGoldensImagesAllocatesNothingPastTheReservationAndGivesTheirTokens(String name) {
        serveTheGoldens(name, 512, true);
    }

    /**
     * Steps of 20 tokens reserve 20 feature rows (or the largest image's), fewer than the two images
     * a step's chunks would reach take: the scheduler stops a chunk before an image that does not fit
     * beside the step's others, so the kept features never grow, and the tokens are the golden's.
     * (The tiny Qwen2-VL's largest image, 1 281 rows, sets its limit, above its goldens' images of 5-12
     * rows: no chunk is cut there, and that case checks the tokens only.)
     */
    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"llava-default", "internvl-qwen2", "qwen2-vl", "phi3v"})
    void stepsWhoseImagesWouldOutgrowTheReservationWaitAndAllocateNothing(String name) {
        serveTheGoldens(name, 20, true);
    }

    private void serveTheGoldens(String name, int tokensAStep, boolean nothingAllocated) {
        LlavaGoldenTest.Case golden = LlavaGoldenTest.Case.load(name, this::image);
        List<String> allocations = new ArrayList<>();
        try (Backend cpu = Backends.create(device(), new BackendOptions(1));
             Checkpoint checkpoint = Checkpoint.open(golden.directory())) {
            Backend device = recordingDevice(cpu, allocations);
            ModelConfig config = ModelConfig.load(golden.directory());
            CausalLM model = ModelRegistry.find(config).load(new ModelContext(config, checkpoint, device, MAX_MODEL_LEN,
                    golden.directory()));
            EngineConfig settings = new EngineConfig(MAX_MODEL_LEN, 16, 0, 8, tokensAStep, false, 0L, device(), 1, 0.9, true, false, 4);
            try (LLMEngine engine = new LLMEngine(model, device, null, List.of(2), MAX_MODEL_LEN, settings)) {
                assertTrue(allocations.size() > 0, "the engine reserved and profiled before any request");
                allocations.clear();
                SamplingParams greedy = SamplingParams.builder().temperature(0).ignoreEos(true).maxTokens(16).build();
                // The prompt of two images first: its first step reaches both (llava-default, qwen2-vl).
                for (int i : java.util.stream.IntStream.concat(java.util.stream.IntStream.of(1, 0, 2),
                        java.util.stream.IntStream.range(3, golden.prompts().size())).toArray()) {
                    engine.addRequest(Integer.toString(i), null, golden.collapsed(i), greedy, null, golden.imagesOf(i));
                }
                Map<String, RequestOutput> finished = new HashMap<>();
                while (engine.hasUnfinishedRequests()) {
                    for (RequestOutput out : engine.step()) if (out.finished()) finished.put(out.requestId(), out);
                }
                for (int i = 0; i < golden.prompts().size(); i++) {
                    assertArrayEquals(golden.greedy().get(i), finished.get(Integer.toString(i)).outputs().getFirst().tokenIdArray(),
                            "prompt " + i);
                }
                if (nothingAllocated) assertEquals(List.of(), allocations, "allocations while serving the images");
            }
        }
    }
}
