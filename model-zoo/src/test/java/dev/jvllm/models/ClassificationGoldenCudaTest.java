package dev.jvllm.models;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.io.IOException;

/** ClassificationGoldenTest's checks on the CUDA backend (skipped where no GPU is found): the type offsets and pooled rows there. */
class ClassificationGoldenCudaTest {

    @ParameterizedTest
    @ValueSource(strings = {"bert-classifier-tiny", "bert-cross-encoder-tiny", "xlm-roberta-cross-encoder-tiny", "qwen2-classifier-tiny",
            "llama-reward-tiny"})
    void probabilitiesAreThoseOfTransformersLogitsOnTheGpu(String name) throws IOException {
        RuntimeAssumptions.requireGpu();
        ClassificationGoldenTest.probabilitiesMatch(name, "cuda", 1e-4f);
    }
}
