package dev.jvllm.models;

import dev.jvllm.EngineConfig;
import dev.jvllm.ImageInput;
import dev.jvllm.RequestOutput;
import dev.jvllm.SamplingParams;
import dev.jvllm.engine.LLMEngine;
import dev.jvllm.spi.CausalLM;
import dev.jvllm.spi.VisionLanguageModel;
import dev.jvllm.config.ModelConfig;
import dev.jvllm.models.vision.VisionLanguageDecoder;
import dev.jvllm.spi.Backend;
import dev.jvllm.spi.BackendOptions;
import dev.jvllm.spi.Backends;
import dev.jvllm.spi.ModelContext;
import dev.jvllm.spi.ModelRegistry;
import dev.jvllm.weights.Checkpoint;
import org.junit.jupiter.api.Test;

import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Proxy;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.assertThrows;

/**
 * A vision model makes the tower inputs of the images the engine says come next in the background
 * (VisionLanguageDecoder.prepareImages), uses them when a step encodes those images, forgets those no
 * longer upcoming, and throws a failure made ahead as itself, as if made in the step.
 */
class ImagePrefetchTest {

    private static final int MAX_MODEL_LEN = 256;

    @Test
    void imagesMadeAheadAreUsedOnceForgottenWhenNoLongerUpcomingAndFailAsThemselves() {
        LlavaGoldenTest.Case golden = LlavaGoldenTest.Case.load("phi3v", VisionGoldens::decoded);
        try (Backend cpu = Backends.create("cpu", new BackendOptions(1));
             Checkpoint checkpoint = Checkpoint.open(golden.directory())) {
            ModelConfig config = ModelConfig.load(golden.directory());
            VisionLanguageDecoder<?> model = (VisionLanguageDecoder<?>) ModelRegistry.find(config)
                    .load(new ModelContext(config, checkpoint, cpu, MAX_MODEL_LEN, golden.directory()));
            ImageInput first = golden.images().get(0), second = golden.images().get(1);
            model.prepareImages(List.of(first, second, first));
            assertEquals(2, model.imagesPreparedAhead(), "each upcoming image once");
            model.prepareImages(List.of(second));
            assertEquals(1, model.imagesPreparedAhead(), "the first is no longer upcoming");
            model.encodeImages(List.of(second));
            assertEquals(0, model.imagesPreparedAhead(), "the step used the second's inputs");
            model.prepareImages(List.of(second));
            assertEquals(0, model.imagesPreparedAhead(), "its features are kept: nothing to make");

            ImageInput thin = ImageInput.rgb(1, 3000, new byte[3 * 3000]);
            RuntimeException refused = assertThrows(RuntimeException.class, () -> model.checkImage(thin));
            model.prepareImages(List.of(thin));
            RuntimeException failed = assertThrows(RuntimeException.class, () -> model.encodeImages(List.of(thin)));
            assertEquals(refused.getClass(), failed.getClass(), "the failure made ahead, not wrapped: " + failed);
        }
    }

    /**
     * The engine names the upcoming images after queueing each step: steps of 20 tokens reach the
     * goldens' images over several steps, the first call names images still to come, the last names
     * none, and the tokens are the golden's.
     */
    @Test
    void theEngineNamesTheUpcomingImagesAfterEachStep() {
        LlavaGoldenTest.Case golden = LlavaGoldenTest.Case.load("llava-default", VisionGoldens::decoded);
        List<List<?>> calls = new ArrayList<>();
        try (Backend cpu = Backends.create("cpu", new BackendOptions(1));
             Checkpoint checkpoint = Checkpoint.open(golden.directory())) {
            ModelConfig config = ModelConfig.load(golden.directory());
            CausalLM real = ModelRegistry.find(config).load(new ModelContext(config, checkpoint, cpu, MAX_MODEL_LEN, golden.directory()));
            CausalLM model = (CausalLM) Proxy.newProxyInstance(getClass().getClassLoader(),
                    new Class<?>[]{CausalLM.class, VisionLanguageModel.class}, (proxy, method, args) -> {
                        if (method.getName().equals("prepareImages")) calls.add(List.copyOf((List<?>) args[0]));
                        try {
                            return method.invoke(real, args);
                        } catch (InvocationTargetException e) {
                            throw e.getCause();
                        }
                    });
            EngineConfig settings = new EngineConfig(MAX_MODEL_LEN, 16, 64L << 20, 8, 20, false, 0L, "cpu", 1, 0.9, true, false, 4);
            SamplingParams greedy = SamplingParams.builder().temperature(0).ignoreEos(true).maxTokens(4).build();
            try (LLMEngine engine = new LLMEngine(model, cpu, null, List.of(2), MAX_MODEL_LEN, settings)) {
                for (int i = 0; i < golden.prompts().size(); i++) {
                    engine.addRequest(Integer.toString(i), null, golden.collapsed(i), greedy, null, golden.imagesOf(i));
                }
                Map<String, RequestOutput> finished = new HashMap<>();
                while (engine.hasUnfinishedRequests()) {
                    for (RequestOutput out : engine.step()) if (out.finished()) finished.put(out.requestId(), out);
                }
                for (int i = 0; i < golden.prompts().size(); i++) {
                    int[] expected = java.util.Arrays.copyOf(golden.greedy().get(i), 4);
                    assertArrayEquals(expected, finished.get(Integer.toString(i)).outputs().getFirst().tokenIdArray(), "prompt " + i);
                }
                int before = calls.size();
                assertEquals(List.of(), engine.step());
                assertEquals(before + 1, calls.size(), "an idle step tells the model that nothing is upcoming");
            }
        }
        assertTrue(calls.size() > 1, "a call a step: " + calls.size());
        assertTrue(golden.images().containsAll(calls.getFirst()) && !calls.getFirst().isEmpty(),
                "the first step names golden images still to come: " + calls.getFirst());
        assertEquals(List.of(), calls.getLast(), "nothing is upcoming after the last step");
    }
}
