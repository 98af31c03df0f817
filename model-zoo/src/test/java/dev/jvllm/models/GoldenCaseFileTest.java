package dev.jvllm.models;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
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
 * The golden comparisons for every case of one tools/reference/cases module, whose golden
 * directories must exist.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
abstract class GoldenCaseFileTest {

    /** A CASES entry: {@code "name": ("ConfigClass", ...}. */
    private static final Pattern CASE = Pattern.compile("^\\s*\"([a-z0-9.-]+)\":\\s*\\(\"\\w+Config\"", Pattern.MULTILINE);

    private final Path casesFile;

    /** @param module the file name under tools/reference/cases */
    GoldenCaseFileTest(String module) {
        this.casesFile = Path.of("tools", "reference", "cases", module);
    }

    /** The case names the module defines. */
    List<String> caseNames() {
        try {
            Matcher m = CASE.matcher(Files.readString(locate()));
            List<String> names = m.results().map(r -> r.group(1)).toList();
            assertTrue(!names.isEmpty(), "no cases found in " + locate());
            return names;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    Stream<Golden> cases() {
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

    /** The module, found from the test resources up through the repository. */
    private Path locate() {
        for (Path dir = Golden.root().toAbsolutePath(); dir != null; dir = dir.getParent()) {
            if (Files.isRegularFile(dir.resolve(casesFile))) {
                return dir.resolve(casesFile);
            }
        }
        throw new IllegalStateException(casesFile + " not found above " + Golden.root());
    }
}
