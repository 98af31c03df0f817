package dev.jvllm.cuda;

import dev.jvllm.weights.DType;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/** Every kernel source compiles with NVRTC for Hopper (needs libnvrtc.so.13, not a GPU). */
class KernelSourcesCompileTest {

    private static Nvrtc nvrtc;
    private static String missing = "";

    @BeforeAll
    static void loadNvrtc() {
        try {
            nvrtc = Nvrtc.get();
        } catch (CudaException e) {
            missing = e.getMessage();
        }
    }

    @BeforeEach
    void requireNvrtc() {
        assumeTrue(nvrtc != null, "NVRTC is not available: " + missing);
    }

    @Test
    void everyModuleCompilesForSm90AndDefinesItsKernelsForEachActivationType(@TempDir Path cache) {
        KernelCompiler compiler = new KernelCompiler(nvrtc, "sm_90", cache);
        for (DType activations : List.of(DType.F32, DType.BF16, DType.F16)) {
            for (String module : KernelCompiler.MODULES) {
                byte[] cubin = compiler.cubin(module, activations);
                String build = module + " for " + activations;
                assertArrayEquals(new byte[]{0x7f, 'E', 'L', 'F'}, Arrays.copyOf(cubin, 4), build + " is not an ELF cubin");
                String symbols = new String(cubin, StandardCharsets.ISO_8859_1);
                for (Kernel kernel : Kernel.values()) {
                    if (kernel.module.equals(module)) {
                        assertEquals(kernel.builtFor(activations), symbols.contains(kernel.function + "\0"),
                                build + " defines " + kernel.function + ": expected " + kernel.builtFor(activations));
                    }
                }
            }
        }
    }

    @Test
    void compiledModulesAreCachedOnDiskAndReused(@TempDir Path cache) throws Exception {
        KernelCompiler compiler = new KernelCompiler(nvrtc, "sm_90", cache);
        byte[] first = compiler.cubin("norms", DType.F32);
        List<Path> files;
        try (var listing = Files.list(cache)) {
            files = listing.toList();
        }
        assertEquals(1, files.size(), "one cached cubin: " + files);
        assertTrue(files.getFirst().getFileName().toString().matches("norms-[0-9a-f]{32}\\.cubin"), files.toString());
        Files.write(files.getFirst(), new byte[]{1, 2, 3});
        assertArrayEquals(new byte[]{1, 2, 3}, compiler.cubin("norms", DType.F32), "the cached file is what is loaded");
        assertTrue(first.length > 100);
    }

    @Test
    void architectureIsPartOfTheCacheKey(@TempDir Path cache) throws Exception {
        new KernelCompiler(nvrtc, "sm_90", cache).cubin("gather", DType.F32);
        new KernelCompiler(nvrtc, "sm_80", cache).cubin("gather", DType.F32);
        try (var listing = Files.list(cache)) {
            assertEquals(2, listing.count());
        }
    }

    @Test
    void aProgramThatDoesNotCompileReportsTheCompilerLog() {
        CudaException e = org.junit.jupiter.api.Assertions.assertThrows(CudaException.class, () ->
                nvrtc.compile("broken.cu", "extern \"C\" __global__ void k() { undefined_name(); }",
                        java.util.Map.of(), List.of("--gpu-architecture=sm_90"), true));
        assertTrue(e.getMessage().contains("NVRTC_ERROR_COMPILATION"), e.getMessage());
        assertTrue(e.getMessage().contains("undefined_name"), e.getMessage());
    }
}
