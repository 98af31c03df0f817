package dev.jvllm.models;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.nio.file.Files;
import java.util.List;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * GPT-2, GPT-NeoX, OPT, Phi, Falcon, GPT-J, BLOOM and MPT on the CPU against Transformers' own
 * float32 outputs: one case per difference each class must honour (tools/reference/cases/part_b.py).
 */
class PartBGoldenTest {

    /** Every case of part_b.py; each must have its generated directory under goldens/. */
    static final List<String> CASES = List.of(
            "gpt2-plain", "gpt2-layer-scaled",
            "gpt-neox-parallel", "gpt-neox-sequential",
            "opt-pre-norm", "opt-post-norm-projected",
            "phi-partial-rotary", "phi-gqa",
            "falcon-multi-query", "falcon-sequential-bias", "falcon-new-decoder", "falcon-alibi",
            "gptj-rotary-dim",
            "bloom-plain", "bloom-six-heads",
            "mpt-plain", "mpt-six-heads");

    static Stream<Golden> partBCases() {
        return CASES.stream().map(name -> Golden.root().resolve(name)).filter(Files::isDirectory).map(Golden::load);
    }

    @Test
    void goldenOutputsExistForEveryPartBCase() {
        List<String> missing = CASES.stream().filter(name -> !Files.isDirectory(Golden.root().resolve(name))).toList();
        assertTrue(missing.isEmpty(), "golden directories missing under model-zoo/src/test/resources/goldens/: " + missing
                + "; generate them with python3 tools/reference/make_goldens.py --out DIR --only " + String.join(" ", missing));
    }

    @ParameterizedTest(name = "{0}", allowZeroInvocations = true)
    @MethodSource("partBCases")
    void logitsMatchTransformersAtEveryPosition(Golden golden) {
        GoldenChecks.logitsMatchAtEveryPosition(golden);
    }

    @ParameterizedTest(name = "{0}", allowZeroInvocations = true)
    @MethodSource("partBCases")
    void greedyTokensEqualTransformers(Golden golden) {
        GoldenChecks.greedyTokensMatch(golden);
    }
}
