package dev.jvllm.cpu;

import dev.jvllm.spi.AttentionParams;

import java.util.SplittableRandom;

/** {@link PagedAttentionTest}'s random relative bias, for the CUDA kernel tests in another package. */
public final class PagedAttentionTestAccess {

    private PagedAttentionTestAccess() {
    }

    public static AttentionParams.RelativeBias relativeBias(int heads, int distance, long seed) {
        return PagedAttentionTest.relativeBias(heads, distance, new SplittableRandom(seed));
    }
}
