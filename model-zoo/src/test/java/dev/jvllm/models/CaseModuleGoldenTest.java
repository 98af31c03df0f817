package dev.jvllm.models;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.stream.Stream;

/**
 * Every case of one tools/reference/cases module against Transformers' float32 outputs: its golden
 * directories must exist, the CPU logits match at every prompt position and greedy decoding through
 * the engine gives Transformers' tokens.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
abstract class CaseModuleGoldenTest {

    /** The module's file name under tools/reference/cases, e.g. "moe.py". */
    abstract String casesModule();

    Stream<Golden> cases() {
        return Golden.existing(Golden.caseNamesIn(casesModule()));
    }

    @Test
    void goldenOutputsExistForEveryCase() {
        Golden.requireDirectories(Golden.caseNamesIn(casesModule()));
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
}
