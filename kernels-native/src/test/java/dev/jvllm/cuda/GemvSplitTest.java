package dev.jvllm.cuda;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * How the one-row products share a weight row between warps, by the card's memory: Llama-3-8B's
 * 4096-wide rows in quarters on an H100, in halves on an H200 (each measured fastest there), the
 * 14336-wide down projection in quarters on both. Checked without a GPU.
 */
class GemvSplitTest {

    @Test
    void peakBandwidthIsDoubleDataRateOverTheBus() {
        // An H100 SXM's HBM3: 2619 MHz over 5120 bits.
        assertEquals(3.352e12, CudaContext.peakMemoryBandwidth(2_619_000, 5120), 1e9);
        assertEquals(0.0, CudaContext.peakMemoryBandwidth(0, 5120), "a driver that reports no clock");
    }

    @Test
    void rowsSplitInQuartersBelowFourTerabytesASecondAndInHalvesFromThere() {
        int h100 = CudaBackend.gemvShortestPart(CudaContext.peakMemoryBandwidth(2_619_000, 5120));
        int h200 = CudaBackend.gemvShortestPart(4.81e12);
        assertEquals(4, CudaBackend.gemvSplit(4096, h100));
        assertEquals(2, CudaBackend.gemvSplit(4096, h200));
        assertEquals(4, CudaBackend.gemvSplit(14336, h100));
        assertEquals(4, CudaBackend.gemvSplit(14336, h200));
        assertEquals(4, CudaBackend.gemvSplit(4096, CudaBackend.gemvShortestPart(0.0)), "unknown bandwidth: quarters");
    }

    @Test
    void shortRowsAndRowsOfOddWidthStayWithOneWarp() {
        assertEquals(1, CudaBackend.gemvSplit(1024, 1024));
        assertEquals(1, CudaBackend.gemvSplit(2056, 1024), "2056 is not a whole number of 16-element pieces a half");
    }
}
