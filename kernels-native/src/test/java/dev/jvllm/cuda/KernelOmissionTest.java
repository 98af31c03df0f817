package dev.jvllm.cuda;

import org.junit.jupiter.api.Test;

import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;

class KernelOmissionTest {

    @Test
    void omittedKernelsAreFunctionNamesOrLaunchLabelsSeparatedByCommas() {
        assertEquals(Set.of("paged_decode_128_g4", "gemv_rows N=4096 K=14336"),
                KernelLauncher.omittedKernels(" paged_decode_128_g4, gemv_rows N=4096 K=14336 ,,"));
        assertEquals(Set.of(), KernelLauncher.omittedKernels(""), "nothing omitted by default");
    }
}
