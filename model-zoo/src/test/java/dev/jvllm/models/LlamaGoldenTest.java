package dev.jvllm.models;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.stream.Stream;

/** Llama on the CPU against Hugging Face Transformers' own float32 outputs (plain, GQA, tied, llama3 rope). */
class LlamaGoldenTest {

    static Stream<Golden> llamaCases() {
        return Stream.concat(Golden.cases("llama-"), Golden.cases("llama3-"));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("llamaCases")
    void logitsMatchTransformersAtEveryPosition(Golden golden) {
        GoldenChecks.logitsMatchAtEveryPosition(golden);
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("llamaCases")
    void greedyTokensEqualTransformers(Golden golden) {
        GoldenChecks.greedyTokensMatch(golden);
    }
}
