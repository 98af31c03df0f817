package dev.jvllm.models;

import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.nio.file.Files;
import java.util.stream.Stream;

/**
 * Decoder goldens on the GPU, against Transformers: StableLM and StarCoder2 through the generic
 * decoder (LayerNorm decoders, partial rotary, a sliding window) and Gemma 3 (a rotary table for
 * the sliding layers and one for the global layers, (1 + w) q/k norms), through the CUDA backend.
 */
class DecoderGoldenCudaTest {

    static Stream<Golden> cases() {
        return Stream.of("stablelm-partial-rotary", "starcoder2-window", "gemma3-local-global").map(name -> Golden.root().resolve(name))
                .filter(Files::isDirectory).map(Golden::load);
    }

    @BeforeEach
    void requireGpu() {
        RuntimeAssumptions.requireGpu();
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("cases")
    void logitsMatchTransformersAtEveryPosition(Golden golden) {
        GoldenChecks.logitsMatchAtEveryPosition(golden, "cuda");
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("cases")
    void greedyTokensEqualTransformers(Golden golden) {
        GoldenChecks.greedyTokensMatch(golden, "cuda");
    }
}
