package dev.jvllm.models;

/**
 * Baichuan, InternLM, InternLM2 and ChatGLM against Transformers' float32 outputs: every case of
 * tools/reference/cases/part_c.py. Transformers ships no class for these families, so each
 * reference is a native model with the same math (LlamaForCausalLM, or GlmForCausalLM for
 * ChatGLM) whose checkpoint the case's repack function rewrote into the family's own names, packing
 * and config fields; the logits are the native model's. ALiBi Baichuan (13B) has no native
 * equivalent and no case: RepackedFamiliesTest checks it against Llama where positions do not matter.
 */
class RepackedFamiliesGoldenTest extends GoldenCaseFileTest {

    RepackedFamiliesGoldenTest() {
        super("part_c.py");
    }
}
