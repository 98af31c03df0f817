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
 * before they wait, so that those loads overlap the end of the kernel ahead. A kernel may instead
 * name the device function it waits in ("JV_DEPENDENT_PROLOGUE in NAME"); that function must wait,
 * and before it subscript or dereference only the pointer parameters it names ("before its wait it
 * reads: ...").
 */
class KernelSourcesTest {

    private static final Pattern KERNEL =
            Pattern.compile("__global__\\s+void\\s+(?:__launch_bounds__\\([^)]*\\)[\\s\\\\]*|[A-Z_]+_BOUNDS\\s+)?([\\w#]+)\\s*\\(");
    private static final String PROLOGUE = "JV_DEPENDENT_PROLOGUE();";

    @Test
    void everyKernelWaitsForTheKernelBeforeItBeforeTouchingActivations() throws IOException {
        List<String> offenders = new ArrayList<>();
        List<String> names = new ArrayList<>();
        for (String module : KernelCompiler.MODULES) {
            offenders.addAll(offenders(module, source(module), names));
        }
        assertTrue(names.size() >= 30, "found " + names.size() + " kernels in the sources");
        // paged_decode's kernels come from one macro, whose name parameter the scan finds.
        assertTrue(names.contains("attention.cu: paged_decode_name"), "kernels found: " + names);
        assertEquals(List.of(), offenders);
    }

    @Test
    void aKernelMayWaitInTheFunctionItNamesOnlyIfThatFunctionWaits() {
        String waits = "__device__ void body(int* y) { " + PROLOGUE + " y[0] = 1; }\n";
        String skips = "__device__ void body(int* y) { y[0] = 1; }\n";
        String kernel = "extern \"C\" __global__ void k(int* y) { /* JV_DEPENDENT_PROLOGUE in body */ body(y); }";
        assertEquals(List.of(), offenders("test", waits + kernel, new ArrayList<>()));
        assertEquals(List.of("test.cu: k says it waits in body, which has no " + PROLOGUE),
                offenders("test", skips + kernel, new ArrayList<>()));
        // before its wait the function may take addresses, and read only what it names
        String kernel2 = "extern \"C\" __global__ void k(const int* w, const int* x, int* y) { /* JV_DEPENDENT_PROLOGUE in body */ body(w, x, y); }";
        String early = "__device__ void body(const int* w, const int* x, int* y) { int v = x[0]; " + PROLOGUE + " y[0] = v; }\n";
        assertEquals(List.of("test.cu: k waits in body, which reads or writes [x] before its " + PROLOGUE),
                offenders("test", early + kernel2, new ArrayList<>()));
        String named = "__device__ void body(const int* w, const int* x, int* y) { // before its wait it reads: w\n"
                + " const int* at = x + 4; int v = w[0] + *(w + 1); " + PROLOGUE + " y[0] = v + at[0]; }\n";
        assertEquals(List.of(), offenders("test", named + kernel2, new ArrayList<>()));
    }

    private static List<String> offenders(String module, String source, List<String> names) {
        List<String> offenders = new ArrayList<>();
        Matcher kernel = KERNEL.matcher(source);
        while (kernel.find()) {
            int body = source.indexOf('{', kernel.end());
            int end = bodyEnd(source, body);
            int prologue = source.indexOf(PROLOGUE, body);
            String name = module + ".cu: " + kernel.group(1);
            names.add(name);
            if (prologue < 0 || prologue > end) {
                String delegate = delegatedWait(source, body, end);
                if (delegate == null) {
                    offenders.add(name + " has no " + PROLOGUE);
                } else if (!waitsIn(source, delegate)) {
                    offenders.add(name + " says it waits in " + delegate + ", which has no " + PROLOGUE);
                } else {
                    String early = readsBeforeItsWait(source, delegate);
                    if (early != null) offenders.add(name + " waits in " + delegate + ", which " + early);
                }
                continue;
            }
            String before = source.substring(body + 1, prologue).replaceAll("__shared__[^;]*;", "");
            if (before.contains("[") || before.contains("*(") || before.matches("(?s).*=\\s*\\*.*")) {
                offenders.add(name + " reads or writes memory before " + PROLOGUE + ":" + before);
            }
        }
        return offenders;
    }

    @Test
    void theCheckCatchesAKernelThatReadsBeforeWaiting() {
        String early = "extern \"C\" __global__ void k(const int* x, int* y) { int v = x[0]; " + PROLOGUE + " y[0] = v; }";
        List<String> names = new ArrayList<>();
        List<String> found = offenders("test", early, names);
        assertEquals(List.of("test.cu: k"), names);
        assertEquals(1, found.size(), found.toString());
        assertTrue(found.getFirst().startsWith("test.cu: k reads or writes memory before " + PROLOGUE), found.getFirst());
        String late = "extern \"C\" __global__ void k(const int* x, int* y) { " + PROLOGUE + " y[0] = x[0]; }";
        assertEquals(List.of(), offenders("test", late, new ArrayList<>()), "a kernel that waits first is not named");
    }

    /**
     * The device function a kernel says it waits in ("JV_DEPENDENT_PROLOGUE in NAME" within its
     * body), or null: paged_decode reads what the pass cannot change (its inputs, uploaded before the
     * pass, and keys cached in earlier steps) before it waits, deep in its shared body.
     */
    private static String delegatedWait(String source, int body, int end) {
        Matcher delegated = Pattern.compile("JV_DEPENDENT_PROLOGUE in (\\w+)").matcher(source.substring(body, end));
        return delegated.find() ? delegated.group(1) : null;
    }

    /**
     * Where the body opening at {@code open} closes (its matching brace), so that a kernel's check
     * stops at its own end: kernels a macro makes are followed by more code before the next kernel.
     */
    private static int bodyEnd(String source, int open) {
        int depth = 0;
        for (int i = open; i < source.length(); i++) {
            char c = source.charAt(i);
            if (c == '{') depth++;
            if (c == '}' && --depth == 0) return i;
        }
        return source.length();
    }

    /**
     * Null where the device function touches, before its wait, only pointer parameters it names in
     * a "before its wait it reads: a, b" comment (what the pass cannot change: weights, inputs
     * uploaded before the pass, keys cached in earlier steps); else which others it subscripts or
     * dereferences there. Address arithmetic on the others (p + i) is allowed: it reads nothing.
     */
    private static String readsBeforeItsWait(String source, String function) {
        int[] at = definition(source, function);
        if (at == null) return "is not found";
        int body = at[1];
        String signature = source.substring(at[0], body);
        String before = source.substring(body + 1, source.indexOf(PROLOGUE, body));
        Matcher allowed = Pattern.compile("[Bb]efore its wait it reads: ([\\w, ]+)").matcher(before);
        List<String> named = allowed.find() ? List.of(allowed.group(1).split(",\\s*")) : List.of();
        String code = before.replaceAll("(?s)/\\*.*?\\*/", "").replaceAll("//[^\\n]*", "");
        List<String> touched = new ArrayList<>();
        Matcher pointer = Pattern.compile("\\*\\s*(\\w+)\\s*(?:[,)=]|$)").matcher(signature);
        while (pointer.find()) {
            String parameter = pointer.group(1);
            if (named.contains(parameter)) continue;
            String word = Pattern.quote(parameter);
            if (Pattern.compile("\\b" + word + "\\s*\\[|\\*\\s*\\(?\\s*" + word + "\\b|\\b" + word + "\\s*->").matcher(code).find()) {
                touched.add(parameter);
            }
        }
        return touched.isEmpty() ? null : "reads or writes " + touched + " before its " + PROLOGUE;
    }

    private static boolean waitsIn(String source, String function) {
        int[] at = definition(source, function);
        if (at == null) return false;
        int prologue = source.indexOf(PROLOGUE, at[1]);
        return prologue >= 0 && prologue < bodyEnd(source, at[1]);
    }

    /** Where device function {@code function} is defined: its parameters' start and its body's opening brace; null where it is not. */
    private static int[] definition(String source, String function) {
        Matcher definition = Pattern.compile("__device__[\\w\\s]*\\s" + function + "\\s*\\(").matcher(source);
        return definition.find() ? new int[]{definition.end(), source.indexOf('{', definition.end())} : null;
    }

    private static String source(String module) throws IOException {
        try (InputStream in = KernelSourcesTest.class.getResourceAsStream("/dev/jvllm/cuda/" + module + ".cu")) {
            assertNotNull(in, module + ".cu is not on the class path");
            return new String(in.readAllBytes(), StandardCharsets.UTF_8);
        }
    }
}
