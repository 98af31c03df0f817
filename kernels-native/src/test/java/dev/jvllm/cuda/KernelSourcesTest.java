package dev.jvllm.cuda;

import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Every kernel is launched so that it may start before the kernel ahead of it has finished
 * (programmatic dependent launch): a kernel that read an activation or wrote anything before
 * griddep_wait would race with its predecessor and compute on stale data, on a GPU only and only
 * sometimes. So each kernel's body begins with JV_DEPENDENT_PROLOGUE (after shared-memory
 * declarations at most). Checked on the sources, without a GPU. The one exception is weights, which
 * no kernel writes: the gemv kernels ask for their first pieces (linear.cu's first_weight_pieces)
 * before they wait, so that those loads overlap the end of the kernel ahead.
 */
class KernelSourcesTest {

    private static final Pattern KERNEL =
            Pattern.compile("__global__\\s+void\\s+(?:__launch_bounds__\\([^)]*\\)\\s*|[A-Z_]+_BOUNDS\\s+)?([\\w#]+)\\s*\\(");
    private static final String PROLOGUE = "JV_DEPENDENT_PROLOGUE();";

    @Test
    void everyKernelWaitsForTheKernelBeforeItBeforeTouchingActivations() throws IOException {
        int kernels = 0;
        List<String> offenders = new ArrayList<>();
        List<String> names = new ArrayList<>();
        for (String module : KernelCompiler.MODULES) {
            String source = source(module);
            Matcher kernel = KERNEL.matcher(source);
            while (kernel.find()) {
                kernels++;
                int body = source.indexOf('{', kernel.end());
                int prologue = source.indexOf(PROLOGUE, body);
                int nextKernel = source.indexOf("__global__", body);
                String name = module + ".cu: " + kernel.group(1);
                names.add(name);
                if (prologue < 0 || (nextKernel >= 0 && prologue > nextKernel)) {
                    offenders.add(name + " has no " + PROLOGUE);
                    continue;
                }
                String before = source.substring(body + 1, prologue).replaceAll("__shared__[^;]*;", "");
                if (before.contains("[") || before.contains("*(") || before.matches("(?s).*=\\s*\\*.*")) {
                    offenders.add(name + " reads or writes memory before " + PROLOGUE + ":" + before);
                }
            }
        }
        assertTrue(kernels >= 30, "found " + kernels + " kernels in the sources");
        assertTrue(names.contains("attention.cu: paged_decode_##D##_g##GROUP"), "kernels found: " + names);
        assertEquals(List.of(), offenders);
    }

    @Test
    void theCheckCatchesAKernelThatReadsBeforeWaiting() {
        String early = "extern \"C\" __global__ void k(const int* x, int* y) { int v = x[0]; " + PROLOGUE + " y[0] = v; }";
        Matcher kernel = KERNEL.matcher(early);
        assertTrue(kernel.find());
        int body = early.indexOf('{', kernel.end());
        String before = early.substring(body + 1, early.indexOf(PROLOGUE));
        assertFalse(before.isBlank());
        assertTrue(before.contains("["), "the reading is visible to the check: " + before);
    }

    private static String source(String module) throws IOException {
        try (InputStream in = KernelSourcesTest.class.getResourceAsStream("/dev/jvllm/cuda/" + module + ".cu")) {
            assertNotNull(in, module + ".cu is not on the class path");
            return new String(in.readAllBytes(), StandardCharsets.UTF_8);
        }
    }
}
