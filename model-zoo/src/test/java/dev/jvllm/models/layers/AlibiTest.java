package dev.jvllm.models.layers;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

class AlibiTest {

    private static float p(int exponent) {
        return (float) Math.pow(2, exponent);
    }

    @Test
    void powerOfTwoHeadsGetAGeometricSequenceFromTwoToTheMinusEightOverN() {
        assertArrayEquals(new float[]{p(-2), p(-4), p(-6), p(-8)}, Alibi.slopes(4), 1e-9f);
    }

    @Test
    void extraHeadsTakeOddPowersOfTheNextSequence() {
        assertArrayEquals(new float[]{p(-2), p(-4), p(-6), p(-8), p(-1), p(-3)}, Alibi.slopes(6), 1e-9f);
    }

    @Test
    void mptSlopesInterleaveTheSequenceOfTheNextPowerOfTwo() {
        assertArrayEquals(new float[]{p(-4), p(-8), p(-12), p(-16), p(-2), p(-6)}, Alibi.mptSlopes(6, 16), 1e-9f);
        assertArrayEquals(Alibi.slopes(8), Alibi.mptSlopes(8, 8), 1e-9f);
    }
}
