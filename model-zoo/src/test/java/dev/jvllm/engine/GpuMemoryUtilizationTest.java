package dev.jvllm.engine;

import dev.jvllm.EngineConfig;
import dev.jvllm.JvllmException;
import dev.jvllm.config.ModelConfig;
import dev.jvllm.spi.Backend;
import dev.jvllm.spi.BackendOptions;
import dev.jvllm.spi.Backends;
import dev.jvllm.spi.CausalLM;
import dev.jvllm.spi.DeviceMemory;
import dev.jvllm.spi.ModelContext;
import dev.jvllm.spi.ModelRegistry;
import dev.jvllm.spi.Tensor;
import dev.jvllm.weights.Checkpoint;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Without kvCacheMemoryBytes, an engine on a device sizes its KV cache as vLLM does: the device's
 * memory times gpuMemoryUtilization, less what is in use after the weights and a profiling forward
 * pass of the largest step. The device is the CPU backend reporting a device memory of our choosing.
 */
class GpuMemoryUtilizationTest {

    private static final long MIB = 1L << 20;
    private static final int MAX_MODEL_LEN = 256;
    private static final int BLOCK = 16;

    private Backend cpu;
    private Checkpoint checkpoint;
    private ModelConfig config;
    private final AtomicInteger argmaxCalls = new AtomicInteger();

    @BeforeEach
    void open() {
        Path dir = TinyLlamas.checkpoint("llama-plain");
        config = ModelConfig.load(dir);
        checkpoint = Checkpoint.open(dir);
        cpu = Backends.create("cpu", new BackendOptions(1));
    }

    @AfterEach
    void close() {
        checkpoint.close();
        cpu.close();
    }

    /** The CPU backend, claiming to allocate from a device with {@code free} of {@code total} bytes free. */
    private Backend device(long free, long total) {
        return TinyLlamas.withOverrides(cpu, Map.of(
                "deviceMemory", args -> Optional.of(new DeviceMemory(free, total)),
                "argmaxRows", args -> {
                    argmaxCalls.incrementAndGet();
                    return cpu.argmaxRows((Tensor) args[0]);
                }));
    }

    private LLMEngine engine(Backend backend, double utilization) {
        CausalLM model = ModelRegistry.find(config).load(new ModelContext(config, checkpoint, backend, MAX_MODEL_LEN));
        EngineConfig settings = new EngineConfig(MAX_MODEL_LEN, BLOCK, 0, 256, 512, false, 0L, "cpu", 1, utilization);
        return new LLMEngine(model, backend, null, List.of(2), MAX_MODEL_LEN, settings);
    }

    @Test
    void theKvCacheTakesTheShareLeftAfterTheWeightsAndAProfilingPass() {
        long total = 1000 * MIB, free = 400 * MIB;
        Backend backend = device(free, total);
        long bytesPerToken = ModelRegistry.find(config).load(new ModelContext(config, checkpoint, cpu, MAX_MODEL_LEN))
                .kvCacheSpec(1, BLOCK).bytesPerToken(4);
        try (LLMEngine engine = engine(backend, 0.9)) {
            long budget = (long) (total * 0.9) - (total - free) - 256 * MIB;
            assertEquals(budget / (bytesPerToken * BLOCK), engine.metrics().kvBlocksTotal());
            assertEquals(1, argmaxCalls.get(), "one profiling forward pass before any request");
        }
    }

    @Test
    void aModelThatLeavesNoRoomUnderTheShareIsAClearError() {
        JvllmException e = assertThrows(JvllmException.class, () -> engine(device(100 * MIB, 1000 * MIB), 0.9));
        assertTrue(e.getMessage().contains("does not fit") && e.getMessage().contains("gpuMemoryUtilization 0.9"),
                e.getMessage());
    }

    @Test
    void aSmallerShareGivesASmallerCache() {
        try (LLMEngine large = engine(device(600 * MIB, 1000 * MIB), 0.9);
             LLMEngine small = engine(device(600 * MIB, 1000 * MIB), 0.7)) {
            assertTrue(small.metrics().kvBlocksTotal() < large.metrics().kvBlocksTotal(),
                    small.metrics().kvBlocksTotal() + " vs " + large.metrics().kvBlocksTotal());
        }
    }
}
