package dev.jvllm.engine;

import dev.jvllm.SpeculativeConfig;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Prompt lookup: what follows the latest earlier occurrence of the longest run of last tokens that occurs. */
class NgramProposerTest {

    private static int[] propose(SpeculativeConfig config, int limit, int... tokens) {
        return new NgramProposer(config).propose(i -> tokens[i], tokens.length, limit);
    }

    @Test
    void guessesWhatFollowedTheLongestRunOfLastTokensSeenBefore() {
        // "2 3" occurs at 1 (then 4 5) and at 6 (then 9); "1 2 3" only at 0: the longer match wins although older.
        int[] tokens = {1, 2, 3, 4, 5, 0, 2, 3, 9, 1, 2, 3};
        assertArrayEquals(new int[]{4, 5, 0}, propose(SpeculativeConfig.ngram(3, 1, 3), 3, tokens));
        // Matching at most two tokens: "2 3" at 6 is the latest.
        assertArrayEquals(new int[]{9, 1, 2}, propose(SpeculativeConfig.ngram(3, 1, 2), 3, tokens));
    }

    @Test
    void guessesUpToTheLimitRepeatingThePeriodTheMatchShows() {
        int[] tokens = {5, 6, 7, 8, 5, 6};
        assertArrayEquals(new int[]{7}, propose(SpeculativeConfig.ngram(8, 2, 2), 1, tokens));
        assertArrayEquals(new int[]{7, 8, 5, 6, 7, 8, 5, 6}, propose(SpeculativeConfig.ngram(8, 2, 2), 8, tokens));
        assertArrayEquals(new int[0], propose(SpeculativeConfig.ngram(8, 2, 2), 0, tokens));
    }

    @Test
    void aRepeatedTokenGuessesItsRepetition() {
        assertArrayEquals(new int[]{4, 4, 4}, propose(SpeculativeConfig.ngram(3, 1, 3), 3, 1, 4, 4, 4, 4));
    }

    @Test
    void nothingIsGuessedBelowTheShortestMatch() {
        assertArrayEquals(new int[0], propose(SpeculativeConfig.ngram(3, 3, 4), 3, 1, 2, 9, 1, 2));
        assertArrayEquals(new int[]{9, 1, 2}, propose(SpeculativeConfig.ngram(3, 2, 4), 3, 1, 2, 9, 1, 2));
        assertArrayEquals(new int[0], propose(SpeculativeConfig.ngram(3, 1, 4), 3, 7));
        assertArrayEquals(new int[0], propose(SpeculativeConfig.ngram(3, 1, 4), 3, 1, 2, 3, 4));
    }

    @Test
    void aBadConfigurationIsRefusedNamingTheOption() {
        assertTrue(assertThrows(IllegalArgumentException.class, () -> SpeculativeConfig.ngram(0))
                .getMessage().contains("numSpeculativeTokens"));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> SpeculativeConfig.ngram(3, 4, 2))
                .getMessage().contains("promptLookupMax"));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> SpeculativeConfig.of("eagle", 3, null, null))
                .getMessage().contains("only \"ngram\""));
        assertArrayEquals(new int[]{5, 5}, lookup(SpeculativeConfig.of("ngram", 3, null, null)));
        assertArrayEquals(new int[]{2, 2}, lookup(SpeculativeConfig.of("ngram", 3, null, 2)));
        assertArrayEquals(new int[]{3, 3}, lookup(SpeculativeConfig.of("ngram", 3, 3, null)));
    }

    private static int[] lookup(SpeculativeConfig config) {
        return new int[]{config.promptLookupMin(), config.promptLookupMax()};
    }
}
