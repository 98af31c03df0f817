package dev.jvllm.models;

/**
 * StableLM and StarCoder2, which jvllm has no class for, through the generic decoder against
 * Transformers' float32 outputs: every case of tools/reference/cases/generic.py.
 */
class GenericDecoderGoldenTest extends GoldenCaseFileTest {

    GenericDecoderGoldenTest() {
        super("generic.py");
    }
}
