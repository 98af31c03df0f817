package dev.jvllm.models;

import dev.jvllm.EngineConfig;
import dev.jvllm.ImageInput;
import dev.jvllm.Prompt;
import dev.jvllm.RequestFailedException;
import dev.jvllm.RequestOutput;
import dev.jvllm.SamplingParams;
import dev.jvllm.config.ModelConfig;
import dev.jvllm.engine.AsyncLLMEngine;
import dev.jvllm.engine.LLMEngine;
import dev.jvllm.spi.Backend;
import dev.jvllm.spi.BackendOptions;
import dev.jvllm.spi.Backends;
import dev.jvllm.spi.CausalLM;
import dev.jvllm.spi.ModelContext;
import dev.jvllm.spi.ModelRegistry;
import dev.jvllm.spi.VisionLanguageModel;
import dev.jvllm.weights.Checkpoint;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Proxy;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * An image that fails to encode ends its own request with a {@link RequestFailedException}; the
 * step's other requests give their golden tokens and the engine serves on. The failure is made by
 * the model (LLaVA's golden, wrapped) refusing one image when encoding: the admission checks leave
 * no known real image that fails there, and a device running short of memory, the likely real cause,
 * cannot be made on the CPU.
 */
class ImageEncodeFailureTest {

    private static final int MAX_MODEL_LEN = 256;
    private static final SamplingParams GREEDY = SamplingParams.builder().temperature(0).ignoreEos(true).maxTokens(16).build();
    /** A blank image, which the wrapped model fails to encode whenever a list it is asked to encode holds it. */
    private static final ImageInput POISONED = ImageInput.rgb(40, 30, new byte[3 * 40 * 30]);

    private LlavaGoldenTest.Case golden;
    private Backend cpu;
    private Checkpoint checkpoint;
    private int failedEncodes;

    @BeforeEach
    void open() {
        golden = LlavaGoldenTest.Case.load("llava-default", VisionGoldens::decoded);
        cpu = Backends.create("cpu", new BackendOptions(1));
        checkpoint = Checkpoint.open(golden.directory());
    }

    @AfterEach
    void close() {
        if (checkpoint != null) checkpoint.close();  // null where the golden's images could not be read (no java.desktop)
        if (cpu != null) cpu.close();
    }

    private LLMEngine engine() {
        ModelConfig config = ModelConfig.load(golden.directory());
        CausalLM real = ModelRegistry.find(config).load(new ModelContext(config, checkpoint, cpu, MAX_MODEL_LEN, golden.directory()));
        CausalLM model = (CausalLM) Proxy.newProxyInstance(getClass().getClassLoader(),
                new Class<?>[]{CausalLM.class, VisionLanguageModel.class}, (proxy, method, args) -> {
                    if (method.getName().equals("encodeImages") && ((List<?>) args[0]).contains(POISONED)) {
                        failedEncodes++;
                        throw new IllegalStateException("the tower ran out of memory");
                    }
                    try {
                        return method.invoke(real, args);
                    } catch (InvocationTargetException e) {
                        throw e.getCause();
                    }
                });
        EngineConfig settings = new EngineConfig(MAX_MODEL_LEN, 16, 64L << 20, 8, 512, false, 0L, "cpu", 1, 0.9, true, false, 4);
        return new LLMEngine(model, cpu, null, List.of(2), MAX_MODEL_LEN, settings);
    }

    private void addGoldenPrompts(LLMEngine engine) {
        for (int i = 0; i < golden.prompts().size(); i++) {
            engine.addRequest("golden" + i, null, golden.collapsed(i), GREEDY, null, golden.imagesOf(i));
        }
    }

    private void assertGoldenTokens(Map<String, RequestOutput> finished) {
        for (int i = 0; i < golden.prompts().size(); i++) {
            assertArrayEquals(golden.greedy().get(i), finished.get("golden" + i).outputs().getFirst().tokenIdArray(), "prompt " + i);
        }
    }

    @Test
    void onlyTheRequestWhoseImageFailsEndsAndTheEngineServesOn() {
        try (LLMEngine engine = engine()) {
            addGoldenPrompts(engine);
            engine.addRequest("bad", null, golden.collapsed(0), GREEDY, null, List.of(POISONED));
            EngineDrain drained = EngineDrain.of(engine);
            Map<String, RequestOutput> finished = drained.finished();
            Map<String, RequestFailedException> failures = drained.failures();
            assertEquals(List.of("bad"), List.copyOf(failures.keySet()));
            RequestFailedException failure = failures.get("bad");
            assertEquals("bad", failure.requestId());
            assertTrue(failure.getMessage().contains("request bad") && failure.getMessage().contains("could not be encoded"),
                    failure.getMessage());
            assertEquals("abort", finished.get("bad").outputs().getFirst().finishReason().toString());
            assertGoldenTokens(finished);
            assertEquals(2, failedEncodes, "the step's images together, then the bad request's alone");

            finished.clear();
            addGoldenPrompts(engine);
            while (engine.hasUnfinishedRequests()) {
                for (RequestOutput out : engine.step()) {
                    if (out.finished()) finished.put(out.requestId(), out);
                    assertNull(engine.failure(out.requestId()));
                }
            }
            assertGoldenTokens(finished);
        }
    }

    @Test
    void theAsyncEnginesStreamOfTheFailedRequestFailsAndTheOthersComplete() throws Exception {
        try (AsyncLLMEngine engine = new AsyncLLMEngine(engine())) {
            var good = engine.submit("good", Prompt.tokens(golden.collapsed(0), golden.imagesOf(0)), GREEDY);
            var bad = engine.submit("bad", Prompt.tokens(golden.collapsed(0), List.of(POISONED)), GREEDY);
            ExecutionException e = assertThrows(ExecutionException.class, () -> bad.result().get(60, TimeUnit.SECONDS));
            assertInstanceOf(RequestFailedException.class, e.getCause());
            assertArrayEquals(golden.greedy().get(0), good.result().get(60, TimeUnit.SECONDS).outputs().getFirst().tokenIdArray());
            var again = engine.submit("again", Prompt.tokens(golden.collapsed(1), golden.imagesOf(1)), GREEDY);
            assertArrayEquals(golden.greedy().get(1), again.result().get(60, TimeUnit.SECONDS).outputs().getFirst().tokenIdArray());
        }
    }
}
