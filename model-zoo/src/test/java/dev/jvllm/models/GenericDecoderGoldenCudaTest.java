package dev.jvllm.models;

import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.nio.file.Files;
import java.util.stream.Stream;

/**
 * {@link GenericDecoderGoldenTest} on the GPU: StableLM and StarCoder2 through the generic decoder
 * and the CUDA backend (LayerNorm decoders, partial rotary, a sliding window) against Transformers.
 */
class GenericDecoderGoldenCudaTest {

    static Stream<Golden> genericCases() {
        return Stream.of("stablelm-partial-rotary", "starcoder2-window").map(name -> Golden.root().resolve(name))
                .filter(Files::isDirectory).map(Golden::load);
    }

    @BeforeEach
    void requireGpu() {
        RuntimeAssumptions.requireGpu();
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("genericCases")
    void logitsMatchTransformersAtEveryPosition(Golden golden) {
        GoldenChecks.logitsMatchAtEveryPosition(golden, "cuda");
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("genericCases")
    void greedyTokensEqualTransformers(Golden golden) {
        GoldenChecks.greedyTokensMatch(golden, "cuda");
    }
}
