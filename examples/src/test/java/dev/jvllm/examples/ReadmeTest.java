package dev.jvllm.examples;

import dev.jvllm.LLM;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The README says only what is true: its Java example is the compiled one, its table is the registry. */
class ReadmeTest {

    private static final Path ROOT = Path.of("..");

    @Test
    void javaExampleIsTheCompiledQuickStart() throws IOException {
        String source = Files.readString(ROOT.resolve("examples/src/main/java/dev/jvllm/examples/QuickStart.java"));
        String example = between(source, "// README-EXAMPLE-START\n", "        // README-EXAMPLE-END");
        String readme = Files.readString(ROOT.resolve("README.md"));
        String readmeBlock = between(readme.substring(readme.indexOf("<!-- README-EXAMPLE")), "```java\n", "```");
        assertEquals(dedent(example), readmeBlock);
    }

    @Test
    void architectureTableListsExactlyTheRegistry() throws IOException {
        String readme = Files.readString(ROOT.resolve("README.md"));
        String table = between(readme, "<!-- ARCHITECTURES-START -->", "<!-- ARCHITECTURES-END -->");
        Matcher m = Pattern.compile("^\\| `([A-Za-z0-9_]+)` \\|", Pattern.MULTILINE).matcher(table);
        List<String> listed = new ArrayList<>();
        while (m.find()) listed.add(m.group(1));
        assertEquals(new TreeSet<>(LLM.supportedArchitectures()), new TreeSet<>(listed));
        assertEquals(listed.size(), new TreeSet<>(listed).size(), "an architecture is listed twice");
    }

    private static String between(String text, String start, String end) {
        int a = text.indexOf(start);
        assertTrue(a >= 0, "missing " + start);
        int b = text.indexOf(end, a + start.length());
        assertTrue(b >= 0, "missing " + end);
        return text.substring(a + start.length(), b);
    }

    private static String dedent(String block) {
        StringBuilder out = new StringBuilder();
        for (String line : block.split("\n", -1)) {
            out.append(line.startsWith("        ") ? line.substring(8) : line.strip()).append('\n');
        }
        return out.toString().replaceAll("\n+$", "\n");
    }
}
