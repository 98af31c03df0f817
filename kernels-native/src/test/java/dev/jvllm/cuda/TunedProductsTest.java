package dev.jvllm.cuda;

import dev.jvllm.weights.DType;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.List;

import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;

/**
 * What the cuBLASLt product search decides without a GPU: which products share a searched shape,
 * which heuristic results become candidates, and which candidate wins.
 */
class TunedProductsTest {

    private static final long BASE = 0x7f12_3400_0000L;

    @Test
    void anOperandsAlignmentIsTheLargestPowerOfTwoDividingItsAddressUpTo256() {
        assertEquals(256, TunedProducts.Shape.alignment(BASE));
        assertEquals(256, TunedProducts.Shape.alignment(BASE + 4096));
        assertEquals(16, TunedProducts.Shape.alignment(BASE + 48));
        assertEquals(2, TunedProducts.Shape.alignment(BASE + 406), "a row of 203 bfloat16 values in");
    }

    @Test
    void productsOfOneSizeShareAShapeOnlyWhenTheirOperandsAreAlignedAlike() {
        TunedProducts.Shape first = TunedProducts.Shape.of(64, 4096, 6144, DType.BF16, BASE, BASE + 512, BASE + 1024);
        assertEquals(first, TunedProducts.Shape.of(64, 4096, 6144, DType.BF16, BASE + 256, BASE, BASE + 2048),
                "other buffers, all 256-byte aligned");
        assertNotEquals(first, TunedProducts.Shape.of(64, 4096, 6144, DType.BF16, BASE, BASE + 8, BASE + 1024));
        assertNotEquals(first, TunedProducts.Shape.of(65, 4096, 6144, DType.BF16, BASE, BASE + 512, BASE + 1024));
    }

    /** Results laid out as cublasLtMatmulHeuristicResult_t (96 bytes: algo[64], workspaceSize, state, wavesCount, reserved[4]). */
    @Test
    void heuristicResultsThatSucceededBecomeCandidatesWithTheirOwnCopyOfTheAlgorithm() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment results = arena.allocate(3 * CublasLt.HEURISTIC_RESULT_BYTES, 8);
            writeResult(results, 0, (byte) 1, 4096, 0, 0.5f);
            writeResult(results, 1, (byte) 2, 0, 15, 1f);  // CUBLAS_STATUS_NOT_SUPPORTED
            writeResult(results, 2, (byte) 3, 0, 0, 2.25f);

            List<CublasLt.Candidate> candidates = CublasLt.candidates(results, 3, arena);
            results.fill((byte) 0);

            assertEquals(2, candidates.size());
            assertEquals(4096, candidates.get(0).workspaceBytes());
            assertEquals(0.5f, candidates.get(0).waves());
            assertEquals(2.25f, candidates.get(1).waves());
            for (int i = 0; i < CublasLt.ALGORITHM_BYTES; i++) {
                assertEquals(1, candidates.get(0).algorithm().get(JAVA_BYTE, i));
                assertEquals(3, candidates.get(1).algorithm().get(JAVA_BYTE, i));
            }
        }
    }

    private static void writeResult(MemorySegment results, int index, byte algorithmFill, long workspace, int state,
                                    float waves) {
        MemorySegment result = results.asSlice(index * CublasLt.HEURISTIC_RESULT_BYTES, CublasLt.HEURISTIC_RESULT_BYTES);
        result.asSlice(0, CublasLt.ALGORITHM_BYTES).fill(algorithmFill);
        result.set(JAVA_LONG, 64, workspace);
        result.set(JAVA_INT, 72, state);
        result.set(JAVA_FLOAT, 76, waves);
    }

    @Test
    void theFastestCandidateWinsAndTheHeuristicsFirstWhereTimesTie() {
        assertEquals(2, TunedProducts.fastest(new float[]{0.03f, 0.02f, 0.01f, Float.POSITIVE_INFINITY}));
        assertEquals(0, TunedProducts.fastest(new float[]{0.02f, 0.02f}));
        assertEquals(1, TunedProducts.fastest(new float[]{Float.POSITIVE_INFINITY, 0.5f}), "one that did not run");
    }
}
