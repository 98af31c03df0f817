package dev.jvllm.engine;

import dev.jvllm.EngineConfig;
import dev.jvllm.spi.EncoderDecoderModel;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** How many encoder tokens' outputs an encoder-decoder model keeps on a device: a tenth of the room the weights leave, bounded. */
class EncoderRoomTest {

    /** A model of 512 encoder positions keeping 48 KiB per encoder token (BART-large in bf16). */
    private static final EncoderDecoderModel BART_LARGE = new EncoderDecoderModel() {
        @Override
        public int decoderStartTokenId() {
            return 2;
        }

        @Override
        public int maxEncoderTokens() {
            return 512;
        }

        @Override
        public long encoderBytesPerToken() {
            return 48 << 10;
        }

        @Override
        public void reserveEncoderMemory(int tokensKept) {
        }

        @Override
        public int encoderTokensKept() {
            return 0;
        }
    };

    private static EngineConfig config(int maxNumSeqs, int maxNumBatchedTokens) {
        return new EngineConfig(1024, 16, 0, maxNumSeqs, maxNumBatchedTokens, true, null, "cuda", 0, 0.9);
    }

    @Test
    void aTenthOfTheRoomAtMostALongestInputForEachSequenceAtLeastAStepsEncoderPass() {
        long gib = 1L << 30;
        assertEquals((int) (6 * gib / 10 / (48 << 10)), LLMEngine.encoderTokensKept(BART_LARGE, config(256, 2048), 6 * gib),
                "6 GiB of room: a tenth of it");
        assertEquals(16 * 512, LLMEngine.encoderTokensKept(BART_LARGE, config(16, 2048), 60 * gib),
                "no more than 16 sequences' longest inputs");
        assertEquals(2049, LLMEngine.encoderTokensKept(BART_LARGE, config(256, 2048), 16L << 20),
                "at least a step's encoder pass and a row, where the room is small");
        assertEquals(2049, LLMEngine.encoderTokensKept(BART_LARGE, config(256, 2048), -gib), "and where there is none");
        assertEquals(513, LLMEngine.encoderTokensKept(BART_LARGE, config(1, 64), 0), "a longest input's where that is more than a step");
    }
}
