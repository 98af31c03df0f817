package dev.jvllm.models;

import dev.jvllm.spi.BackendProvider;

import java.util.ServiceLoader;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * What a test needs of the runtime it runs on, skipped with the reason where it is missing: the
 * GPU twins of the CPU tests need the CUDA backend; tests that decode the golden PNGs need
 * java.desktop, which the GPU machine's jlinked runtime leaves out; tests of text prompts need DJL's
 * tokenizers, whose native library the GPU machine's kit does not carry.
 */
public final class RuntimeAssumptions {

    private static final BackendProvider.Availability CUDA = ServiceLoader.load(BackendProvider.class).stream()
            .map(ServiceLoader.Provider::get).filter(p -> p.name().equals("cuda")).findFirst()
            .map(BackendProvider::availability)
            .orElse(BackendProvider.Availability.no("no \"cuda\" backend on the class path"));

    private RuntimeAssumptions() {
    }

    /** Skips the calling test where there is no usable GPU, naming why. */
    public static void requireGpu() {
        assumeTrue(CUDA.available(), "no GPU: " + CUDA.reason());
    }

    /** Skips the calling test where the runtime has no java.desktop module to decode PNGs with. */
    public static void requirePngDecoding() {
        assumeTrue(ModuleLayer.boot().findModule("java.desktop").isPresent(),
                "this runtime has no java.desktop module to decode PNGs with (the GPU machine's)");
    }

    /** Skips the calling test where DJL's tokenizers are not on the class path (the GPU machine's kit). */
    public static void requireTokenizers() {
        boolean present;
        try {
            Class.forName("ai.djl.huggingface.tokenizers.HuggingFaceTokenizer", false, RuntimeAssumptions.class.getClassLoader());
            present = true;
        } catch (ClassNotFoundException e) {
            present = false;
        }
        assumeTrue(present, "DJL's tokenizers are not on the class path (the GPU machine's kit leaves them out)");
    }
}
