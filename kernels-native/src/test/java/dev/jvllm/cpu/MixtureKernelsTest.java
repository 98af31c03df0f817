package dev.jvllm.cpu;

import dev.jvllm.engine.ForwardBatch;
import dev.jvllm.spi.AttentionParams;
import dev.jvllm.spi.KvCache;
import dev.jvllm.spi.KvCacheSpec;
import dev.jvllm.spi.Tensor;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The CPU kernels mixtures of experts and latent attention add: scatter-add, per-head linear, the latent cache. */
class MixtureKernelsTest {

    @Test
    void scatterAddRowsAddsEachWeightedRowToItsTargetRepeatsIncluded() {
        try (CpuBackend backend = KernelPaths.backend("vector")) {
            Tensor out = backend.constant(new float[]{1, 1, 2, 2, 3, 3}, 3, 2);
            backend.scatterAddRows(backend.constant(new float[]{10, 20, 1, 2, 5, 5}, 3, 2), backend.indices(new int[]{2, 0, 2}),
                    backend.constant(new float[]{0.5f, 2f, -1f}, 1, 3), out);
            assertArrayEquals(new float[]{3, 5, 2, 2, 3, 8}, backend.toFloatArray(out));
        }
    }

    @Test
    void scatterAddRowsRefusesARowOutsideTheOutputNamingIt() {
        try (CpuBackend backend = KernelPaths.backend("vector")) {
            var e = assertThrows(IndexOutOfBoundsException.class, () -> backend.scatterAddRows(backend.constant(new float[2], 1, 2),
                    backend.indices(new int[]{3}), backend.constant(new float[]{1}, 1, 1), backend.allocate(3, 2)));
            assertTrue(e.getMessage().contains("row index 3"), e.getMessage());
        }
    }

    @Test
    void headwiseLinearAppliesEachHeadsOwnMatrixToItsSlice() {
        try (CpuBackend backend = KernelPaths.backend("scalar")) {
            // Two heads of 2 inputs → 1 output: head 0 sums, head 1 subtracts.
            Tensor weight = backend.constant(new float[]{1, 1, 1, -1}, 2, 2);
            Tensor out = backend.allocate(2, 2);
            backend.headwiseLinear(backend.constant(new float[]{1, 2, 3, 4, 5, 6, 7, 9}, 2, 4), weight, 2, out);
            assertArrayEquals(new float[]{3, -1, 11, -2}, backend.toFloatArray(out));
        }
    }

    @Test
    void aLatentCacheHasOnePoolPerLayerAndRefusesOrdinaryAttention() {
        try (CpuBackend backend = KernelPaths.backend("vector");
             KvCache cache = backend.allocateKvCache(KvCacheSpec.latent(2, 4, 16, 12))) {
            CpuKvCache pages = (CpuKvCache) cache;
            assertTrue(pages.values(0) == null && pages.keys(1).byteSize() == 4L * 16 * 12 * Float.BYTES);
            int[] one = {0};
            ForwardBatch batch = new ForwardBatch(one, one, one, new int[]{0, 1}, new int[]{1}, new int[][]{{0}}, 16, one);
            Tensor q = backend.allocate(1, 12);
            var e = assertThrows(IllegalArgumentException.class, () -> backend.attention(q, backend.allocate(1, 12),
                    backend.allocate(1, 12), cache, 0, batch, AttentionParams.causal(1, 1, 12), backend.allocate(1, 12)));
            assertTrue(e.getMessage().contains("does not fit the cache"), e.getMessage());
        }
    }
}
