package dev.jvllm.cpu;

import dev.jvllm.JvllmException;
import dev.jvllm.spi.Backend;
import dev.jvllm.spi.BackendOptions;
import dev.jvllm.spi.BackendProvider;
import dev.jvllm.spi.KvCacheSpec;
import dev.jvllm.spi.Tensor;
import dev.jvllm.weights.DType;
import dev.jvllm.weights.WeightTensor;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ServiceLoader;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The backend's memory side: provider registration, weight views, tensor views, KV cache and path choice. */
class CpuBackendTest {

    @Test
    void providerIsRegisteredAsAlwaysAvailableCpu() {
        BackendProvider cpu = ServiceLoader.load(BackendProvider.class).stream()
                .map(ServiceLoader.Provider::get)
                .filter(p -> p.name().equals("cpu"))
                .findFirst()
                .orElseThrow();
        assertEquals(0, cpu.priority());
        assertTrue(cpu.availability().available());
        try (Backend backend = cpu.create(new BackendOptions(2))) {
            assertInstanceOf(CpuBackend.class, backend);
            assertEquals("cpu", backend.name());
            assertEquals(DType.F32, backend.activationType());
            assertEquals(2, ((CpuBackend) backend).threads());
        }
    }

    @Test
    void weightsOfEveryRankBecomeMatricesOverTheLastDimension() {
        try (CpuBackend backend = KernelPaths.backend("vector")) {
            assertShape(backend.weight(bf16("vector", 7)), 1, 7);
            assertShape(backend.weight(bf16("matrix", 3, 5)), 3, 5);
            assertShape(backend.weight(bf16("experts", 2, 3, 5)), 6, 5);
            assertShape(backend.weight(bf16("scalar")), 1, 1);
        }
    }

    @Test
    void weightsAreReadInPlaceNotCopied() {
        WeightTensor source = bf16("live", 2, 2);
        try (CpuBackend backend = KernelPaths.backend("vector")) {
            Tensor weight = backend.weight(source);
            source.data().set(Elements.SHORT, 2, Elements.floatToBf16(5f));
            assertEquals(5f, backend.toFloatArray(weight)[1]);
        }
    }

    @Test
    void unsupportedWeightTypeIsRefusedByName() {
        WeightTensor fp8 = new WeightTensor("model.layers.0.mlp.up_proj.weight", DType.F8_E4M3, new long[]{4, 4},
                Arena.ofAuto().allocate(16), Path.of("model.safetensors"));
        try (CpuBackend backend = KernelPaths.backend("vector")) {
            JvllmException refused = assertThrows(JvllmException.class, () -> backend.weight(fp8));
            assertTrue(refused.getMessage().contains("model.layers.0.mlp.up_proj.weight"), refused.getMessage());
            assertTrue(refused.getMessage().contains("F8_E4M3"), refused.getMessage());
        }
    }

    @Test
    void weightWhoseBytesDoNotMatchItsShapeIsRefused() {
        WeightTensor wrong = new WeightTensor("short", DType.F32, new long[]{4, 4}, Arena.ofAuto().allocate(60),
                Path.of("model.safetensors"));
        try (CpuBackend backend = KernelPaths.backend("vector")) {
            JvllmException refused = assertThrows(JvllmException.class, () -> backend.weight(wrong));
            assertTrue(refused.getMessage().contains("short"), refused.getMessage());
        }
    }

    @Test
    void rowViewsShareStorageWithTheirTensor() {
        try (CpuBackend backend = KernelPaths.backend("vector")) {
            Tensor all = backend.constant(new float[]{1, 2, 3, 4, 5, 6}, 3, 2);
            Tensor middle = all.rows(1, 1);
            backend.add(middle, middle, middle);
            assertArrayEquals(new float[]{1, 2, 6, 8, 5, 6}, backend.toFloatArray(all));
            assertArrayEquals(new float[]{6, 8}, backend.toFloatArray(middle));
            assertShape(all.reshape(2, 3), 2, 3);
            assertThrows(IllegalArgumentException.class, () -> all.reshape(4, 2));
            assertThrows(IndexOutOfBoundsException.class, () -> all.rows(2, 2));
        }
    }

    @Test
    void indicesConvertToFloats() {
        try (CpuBackend backend = KernelPaths.backend("vector")) {
            Tensor ids = backend.indices(new int[]{4, -1, 7});
            assertShape(ids, 1, 3);
            assertEquals(DType.I32, ids.dtype());
            assertArrayEquals(new float[]{4, -1, 7}, backend.toFloatArray(ids));
        }
    }

    @Test
    void kvCacheWhoseSizeOverflowsIsRefused() {
        try (CpuBackend backend = KernelPaths.backend("vector")) {
            KvCacheSpec huge = new KvCacheSpec(1 << 20, 1 << 20, 1 << 10, 64, 128);
            JvllmException refused = assertThrows(JvllmException.class, () -> backend.allocateKvCache(huge));
            assertTrue(refused.getMessage().contains("too large"), refused.getMessage());
        }
    }

    @Test
    void kvCacheLargerThanMemoryIsRefused() {
        try (CpuBackend backend = KernelPaths.backend("vector")) {
            // 2 × 1024 layers × 2^30 slots × 8192 floats = 64 PiB: addressable, but no machine has it.
            KvCacheSpec tooBig = new KvCacheSpec(1024, 1 << 20, 1 << 10, 64, 128);
            JvllmException refused = assertThrows(JvllmException.class, () -> backend.allocateKvCache(tooBig));
            assertTrue(refused.getMessage().contains("MiB"), refused.getMessage());
        }
    }

    @Test
    void kvCacheCanBeClosedTwice() {
        try (CpuBackend backend = KernelPaths.backend("vector")) {
            var cache = backend.allocateKvCache(new KvCacheSpec(2, 4, 16, 2, 8));
            assertEquals(4, cache.spec().numBlocks());
            cache.close();
            cache.close();
        }
    }

    @Test
    void vectorLoopsAreChosenWhenTheModuleIsPresent() {
        assertTrue(ModuleLayer.boot().findModule("jdk.incubator.vector").isPresent(), "tests run with the module");
        assertTrue(InnerLoops.select().description().startsWith("Vector API"));
    }

    @Test
    void scalarLoopsCanBeForced() {
        String before = System.getProperty(InnerLoops.FORCE_SCALAR_PROPERTY);
        System.setProperty(InnerLoops.FORCE_SCALAR_PROPERTY, "true");
        try (CpuBackend backend = new CpuBackend(BackendOptions.defaults())) {
            assertTrue(backend.kernelDescription().startsWith("scalar"), backend.kernelDescription());
        } finally {
            if (before == null) {
                System.clearProperty(InnerLoops.FORCE_SCALAR_PROPERTY);
            } else {
                System.setProperty(InnerLoops.FORCE_SCALAR_PROPERTY, before);
            }
        }
    }

    @Test
    void withoutTheVectorModuleTheScalarLoopsRunAndNoVectorClassIsLinked() throws IOException, InterruptedException {
        Path java = Path.of(System.getProperty("java.home"), "bin", "java");
        ProcessBuilder builder = new ProcessBuilder(java.toString(), "-cp", System.getProperty("java.class.path"),
                ScalarFallbackProbe.class.getName()).redirectErrorStream(true);
        builder.environment().remove("JDK_JAVA_OPTIONS");
        builder.environment().remove("JAVA_TOOL_OPTIONS");
        Process process = builder.start();
        String output = new String(process.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(process.waitFor(60, TimeUnit.SECONDS), "the probe finished");
        assertEquals(0, process.exitValue(), output);
        assertTrue(output.contains("vector module: false"), output);
        assertTrue(output.contains("loops: scalar loops (module jdk.incubator.vector is absent"), output);
        assertFalse(output.contains("NoClassDefFoundError"), output);
    }

    private static WeightTensor bf16(String name, long... shape) {
        long count = 1;
        for (long d : shape) {
            count *= d;
        }
        return new WeightTensor(name, DType.BF16, shape, Arena.ofAuto().allocate(2 * count), Path.of("test"));
    }

    private static void assertShape(Tensor t, int rows, int cols) {
        assertEquals(rows, t.rows(), "rows of " + t);
        assertEquals(cols, t.cols(), "cols of " + t);
    }
}
