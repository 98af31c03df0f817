package dev.jvllm.models;

/**
 * GPT-2, GPT-NeoX, OPT, Phi, Falcon, GPT-J, BLOOM and MPT on the CPU against Transformers' own
 * float32 outputs: one case per difference each class must honour (tools/reference/cases/part_b.py).
 */
class PartBGoldenTest extends GoldenCaseFileTest {

    PartBGoldenTest() {
        super("part_b.py");
    }
}
