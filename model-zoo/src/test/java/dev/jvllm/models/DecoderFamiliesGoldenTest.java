package dev.jvllm.models;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * Qwen2, Qwen3, Mistral, Gemma, Gemma 2, Phi-3, Yi and DeepSeek-LLM against Transformers' float32
 * outputs: every case of tools/reference/cases/part_a.py, whose golden directories must exist.
 */
class DecoderFamiliesGoldenTest {

    private static final Path CASES_FILE = Path.of("tools", "reference", "cases", "part_a.py");
    /** A CASES entry: {@code "name": ("ConfigClass", ...}. */
    private static final Pattern CASE = Pattern.compile("^\\s*\"([a-z0-9.-]+)\":\\s*\\(\"\\w+Config\"", Pattern.MULTILINE);

    /** The case names part_a.py defines. */
    static List<String> caseNames() {
        try {
            Matcher m = CASE.matcher(Files.readString(casesFile()));
            List<String> names = m.results().map(r -> r.group(1)).toList();
            assertTrue(!names.isEmpty(), "no cases found in " + casesFile());
            return names;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    static Stream<Golden> cases() {
        return caseNames().stream().map(name -> Golden.root().resolve(name)).filter(Files::isDirectory).map(Golden::load);
    }

    @Test
    void goldenOutputsExistForEveryCase() {
        List<String> missing = caseNames().stream().filter(name -> !Files.isDirectory(Golden.root().resolve(name))).toList();
        if (!missing.isEmpty()) {
            fail("golden directories missing under model-zoo/src/test/resources/goldens/ for " + missing
                    + ": generate them with `python3 tools/reference/make_goldens.py --out DIR --only "
                    + String.join(" ", missing) + "` (Transformers 5.17) and commit DIR/<name>/");
        }
    }

    @ParameterizedTest(name = "{0}", allowZeroInvocations = true)
    @MethodSource("cases")
    void logitsMatchTransformersAtEveryPosition(Golden golden) {
        GoldenChecks.logitsMatchAtEveryPosition(golden);
    }

    @ParameterizedTest(name = "{0}", allowZeroInvocations = true)
    @MethodSource("cases")
    void greedyTokensEqualTransformers(Golden golden) {
        GoldenChecks.greedyTokensMatch(golden);
    }

    /** part_a.py, found from the test resources up through the repository. */
    private static Path casesFile() {
        for (Path dir = Golden.root().toAbsolutePath(); dir != null; dir = dir.getParent()) {
            if (Files.isRegularFile(dir.resolve(CASES_FILE))) {
                return dir.resolve(CASES_FILE);
            }
        }
        throw new IllegalStateException(CASES_FILE + " not found above " + Golden.root());
    }
}
