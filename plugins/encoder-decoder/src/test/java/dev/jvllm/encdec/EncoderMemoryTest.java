package dev.jvllm.encdec;

import dev.jvllm.EngineConfig;
import dev.jvllm.LLM;
import dev.jvllm.Prompt;
import dev.jvllm.RequestOutput;
import dev.jvllm.SamplingParams;
import dev.jvllm.config.ModelConfig;
import dev.jvllm.engine.LLMEngine;
import dev.jvllm.engine.TinyLlamas;
import dev.jvllm.spi.Backend;
import dev.jvllm.spi.BackendOptions;
import dev.jvllm.spi.Backends;
import dev.jvllm.spi.CausalLM;
import dev.jvllm.spi.ModelContext;
import dev.jvllm.spi.ModelRegistry;
import dev.jvllm.weights.Checkpoint;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * An encoder-decoder model keeps its requests' encoder outputs in room reserved before the KV cache
 * is sized (on a device, a tenth of what the weights leave; here 128 tokens, reserved by hand), and the
 * engine admits requests only while their encoder inputs fit it together: serving more than fit at once
 * allocates no more room and gives each request what it gives alone.
 */
class EncoderMemoryTest {

    private static final SamplingParams GREEDY = SamplingParams.builder().temperature(0).ignoreEos(true).maxTokens(8).build();

    @Test
    void requestsBeyondTheRoomForEncoderOutputsWaitAndAllocateNothingMore() {
        EncoderDecoderGoldenTest.Case golden = EncoderDecoderGoldenTest.Case.load("bart");
        int[] base = golden.encoderPrompts().get(2);  // 60 tokens
        List<int[]> prompts = new ArrayList<>();
        for (int r = 0; r < 4; r++) {
            int[] p = base.clone();
            p[1] = 3 + r;  // four distinct encoder inputs of 60 tokens: two fit 128 positions together
            prompts.add(p);
        }
        List<int[]> alone = new ArrayList<>();
        try (LLM llm = LLM.builder().model(golden.directory().toString()).device("cpu").build()) {
            for (int[] p : prompts) alone.add(llm.generatePrompts(List.of(Prompt.tokens(p)), GREEDY).getFirst().outputs().getFirst().tokenIdArray());
        }
        List<int[]> allocations = new ArrayList<>();
        try (Backend cpu = Backends.create("cpu", new BackendOptions(1));
             Checkpoint checkpoint = Checkpoint.open(golden.directory())) {
            Backend device = recording(cpu, allocations);
            ModelConfig config = ModelConfig.load(golden.directory());
            CausalLM model = ModelRegistry.find(config).load(new ModelContext(config, checkpoint, device, 128, golden.directory()));
            ((dev.jvllm.spi.EncoderDecoderModel) model).reserveEncoderMemory(128);
            EngineConfig settings = new EngineConfig(128, 16, 0, 8, 64, false, 0L, "cpu", 1, 0.9, true, false, 0);
            try (LLMEngine engine = new LLMEngine(model, device, null, List.of(2), 128, settings)) {
                assertEquals(128, ((dev.jvllm.spi.EncoderDecoderModel) model).encoderTokensKept());
                allocations.clear();
                for (int r = 0; r < prompts.size(); r++) engine.addRequest("r" + r, null, prompts.get(r), GREEDY);
                Map<String, RequestOutput> finished = new HashMap<>();
                int mostRunning = 0;
                while (engine.hasUnfinishedRequests()) {
                    for (RequestOutput out : engine.step()) if (out.finished()) finished.put(out.requestId(), out);
                    mostRunning = Math.max(mostRunning, engine.metrics().running());
                }
                assertEquals(2, mostRunning, "two encoder inputs of 60 tokens fit the 128 kept, not three");
                for (int r = 0; r < prompts.size(); r++) {
                    assertArrayEquals(alone.get(r), finished.get("r" + r).outputs().getFirst().tokenIdArray(), "request " + r);
                }
                for (int[] shape : allocations) {
                    assertTrue(shape[0] < 128, "an allocation of " + shape[0] + " × " + shape[1] + " while serving: the kept rows grew");
                }
            }
        }
    }

    /** The CPU backend, recording each allocation's shape. */
    private static Backend recording(Backend cpu, List<int[]> allocations) {
        return TinyLlamas.withOverrides(cpu, Map.of("allocate", args -> {
            allocations.add(new int[]{(int) args[0], (int) args[1]});
            return cpu.allocate((int) args[0], (int) args[1]);
        }));
    }
}
