package dev.jvllm.models;

import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.net.URISyntaxException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.stream.Stream;


/**
 * The attention kernels only some families use, end to end on the CUDA backend in float32 against
 * Transformers: DeepSeek-V2/V3's multi-head latent attention (logits at every position of a
 * prefill, then 16 greedy tokens through the engine's decode steps) and the encoder attention of
 * BERT and XLM-RoBERTa (last hidden states, and pooled vectors through the engine). Skipped, with
 * the reason, where there is no GPU; cases whose goldens are absent are left out.
 */
class LatentAndEncoderGoldenCudaTest {


    static Stream<Golden> latentAttentionCases() {
        return Stream.of("deepseek-v2-", "deepseek-v3-").flatMap(Golden::cases);
    }

    static Stream<Path> encoderCases() {
        Path root;
        try {
            root = Path.of(LatentAndEncoderGoldenCudaTest.class.getResource("/embedding-goldens").toURI());
        } catch (URISyntaxException e) {
            throw new IllegalStateException(e);
        }
        return Stream.of("bert-tiny", "xlm-roberta-tiny").map(root::resolve)
                .filter(dir -> Files.isRegularFile(dir.resolve("goldens.json")));
    }

    @BeforeEach
    void requireGpu() {
        RuntimeAssumptions.requireGpu();
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("latentAttentionCases")
    void latentAttentionLogitsMatchTransformersAtEveryPosition(Golden golden) {
        GoldenChecks.logitsMatchAtEveryPosition(golden, "cuda");
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("latentAttentionCases")
    void latentAttentionGreedyTokensEqualTransformers(Golden golden) {
        GoldenChecks.greedyTokensMatch(golden, "cuda");
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("encoderCases")
    void encoderHiddenStatesMatchTransformers(Path golden) throws Exception {
        EmbeddingGoldenTest.hiddenStatesMatch(golden, "cuda");
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("encoderCases")
    void encoderPooledVectorsMatchTransformers(Path golden) throws Exception {
        EmbeddingGoldenTest.pooledVectorsMatch(golden, "cuda");
    }
}
