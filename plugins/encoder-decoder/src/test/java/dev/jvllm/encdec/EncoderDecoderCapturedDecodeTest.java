package dev.jvllm.encdec;

import dev.jvllm.EngineConfig;
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
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.lang.reflect.Method;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Supplier;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * An encoder-decoder model's decode steps on a backend that records passes (CUDA graphs): once the
 * requests' encoder outputs are kept, the steps are padded to a few batch shapes (the padding
 * sequences attend to the first sequence's encoder input) and go through the recorded path, and
 * no recorded pass runs the encoder. Here the backend is the CPU one claiming to record, so the
 * padded passes really run: the tokens must be Transformers' greedy tokens.
 */
class EncoderDecoderCapturedDecodeTest {

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"bart", "t5"})
    void paddedDecodeStepsGiveTheGoldenTokensAndRunNoEncoder(String name) {
        EncoderDecoderGoldenTest.Case golden = EncoderDecoderGoldenTest.Case.load(name);
        List<Integer> recordedSizes = new ArrayList<>();
        boolean[] inRecordedPass = {false};
        List<String> encoderRunsWhileRecorded = new ArrayList<>();
        int[] maxTokens = {16, 11, 6};
        Map<String, RequestOutput> finished = new HashMap<>();
        try (Backend cpu = Backends.create("cpu", new BackendOptions(1));
             Checkpoint checkpoint = Checkpoint.open(golden.directory())) {
            Backend device = TinyLlamas.withOverrides(cpu, Map.of(
                    "capturesGraphs", args -> true,
                    "runCaptured", args -> {
                        recordedSizes.add(sequences(args[0]));
                        inRecordedPass[0] = true;
                        try {
                            return ((Supplier<?>) args[1]).get();
                        } finally {
                            inRecordedPass[0] = false;
                        }
                    },
                    "encoderAttention", args -> {
                        if (inRecordedPass[0]) encoderRunsWhileRecorded.add("step " + recordedSizes.size());
                        cpu.encoderAttention((dev.jvllm.spi.Tensor) args[0], (dev.jvllm.spi.Tensor) args[1],
                                (dev.jvllm.spi.Tensor) args[2], (dev.jvllm.engine.ForwardBatch) args[3],
                                (dev.jvllm.spi.AttentionParams) args[4], (dev.jvllm.spi.Tensor) args[5]);
                        return null;
                    }));
            ModelConfig config = ModelConfig.load(golden.directory());
            CausalLM model = ModelRegistry.find(config).load(new ModelContext(config, checkpoint, device, 128, golden.directory()));
            EngineConfig settings = new EngineConfig(128, 16, 1 << 20, 8, 256, false, 0L, "cpu", 1, 0.9, false);
            try (LLMEngine engine = new LLMEngine(model, device, null, List.of(), 128, settings)) {
                for (int r = 0; r < maxTokens.length; r++) {
                    SamplingParams params = SamplingParams.builder().temperature(0).ignoreEos(true).maxTokens(maxTokens[r]).build();
                    engine.addRequest("r" + r, null, golden.encoderPrompts().get(r), params);
                }
                while (engine.hasUnfinishedRequests()) {
                    for (RequestOutput out : engine.step()) if (out.finished()) finished.put(out.requestId(), out);
                }
            }
        }
        for (int r = 0; r < maxTokens.length; r++) {
            assertArrayEquals(Arrays.copyOf(golden.greedy().get(r), maxTokens[r]),
                    finished.get("r" + r).outputs().getFirst().tokenIdArray(), "request " + r);
        }
        assertEquals(List.of(), encoderRunsWhileRecorded, "recorded passes that ran the encoder");
        assertFalse(recordedSizes.isEmpty(), "decode steps went through runCaptured");
        // Three sequences padded to four, then two, then one; the first step (each decoder's start
        // token, its encoder run) is not recorded, so 15 steps are.
        assertEquals(15, recordedSizes.size(), recordedSizes::toString);
        assertTrue(recordedSizes.containsAll(List.of(4, 2, 1)) && List.of(4, 2, 1).containsAll(recordedSizes), recordedSizes::toString);
    }

    /** The padded batch size of the engine's decode shape (a record of the engine's package). */
    private static int sequences(Object shape) {
        try {
            Method accessor = shape.getClass().getDeclaredMethod("sequences");
            accessor.setAccessible(true);
            return (int) accessor.invoke(shape);
        } catch (ReflectiveOperationException e) {
            throw new AssertionError("runCaptured was given " + shape + ", not a decode shape", e);
        }
    }
}
