package dev.jvllm.models;

/**
 * Qwen2, Qwen3, Mistral, Gemma, Gemma 2, Phi-3, Yi and DeepSeek-LLM against Transformers' float32
 * outputs: every case of tools/reference/cases/part_a.py.
 */
class DecoderFamiliesGoldenTest extends CaseModuleGoldenTest {

    @Override
    String casesModule() {
        return "part_a.py";
    }
}
