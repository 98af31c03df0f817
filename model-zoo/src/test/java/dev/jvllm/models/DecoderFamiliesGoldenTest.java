package dev.jvllm.models;

/**
 * Qwen2, Qwen3, Mistral, Gemma, Gemma 2, Phi-3, Yi and DeepSeek-LLM against Transformers' float32
 * outputs: every case of tools/reference/cases/part_a.py, whose golden directories must exist.
 */
class DecoderFamiliesGoldenTest extends GoldenCaseFileTest {

    DecoderFamiliesGoldenTest() {
        super("part_a.py");
    }
}
