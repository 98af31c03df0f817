package dev.jvllm.sampling;

import dev.jvllm.InvalidRequestException;
import dev.jvllm.Logprob;
import dev.jvllm.SamplingParams;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Random;

import static dev.jvllm.sampling.Sequences.logSoftmax;
import static dev.jvllm.sampling.Sequences.sampleCounts;
import static dev.jvllm.sampling.Sequences.softmax;
import static dev.jvllm.sampling.Sequences.state;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class SamplerTest {

    private static final float[] LOGITS = {1.0f, 3.0f, -2.0f, 2.5f, 0.0f};

    private final Sampler sampler = new Sampler();

    private static SamplingParams.Builder params() {
        return SamplingParams.builder().maxTokens(null);
    }

    @Test
    void greedyPicksTheArgmax() {
        assertEquals(1, sampler.sample(state(SamplingParams.greedy(), 5), LOGITS.clone()).tokenId());
    }

    @Test
    void greedyBreaksTiesTowardTheLowestId() {
        float[] tied = {0f, 4f, 1f, 4f};
        assertEquals(1, sampler.sample(state(SamplingParams.greedy(), 4), tied).tokenId());
    }

    @Test
    void nearZeroTemperatureAlwaysPicksTheArgmax() {
        int[] counts = sampleCounts(state(params().temperature(0.01).build(), 5), LOGITS, 2000);
        assertEquals(2000, counts[1]);
    }

    @Test
    void topKOfOneEqualsGreedy() {
        Random random = new Random(7);
        SequenceSamplingState topK1 = state(params().topK(1).build(), 50);
        SequenceSamplingState greedy = state(params().temperature(0).build(), 50);
        for (int row = 0; row < 200; row++) {
            float[] logits = new float[50];
            for (int i = 0; i < logits.length; i++) {
                logits[i] = (float) random.nextGaussian() * 3;
            }
            assertEquals(sampler.sample(greedy, logits.clone()).tokenId(), sampler.sample(topK1, logits.clone()).tokenId());
        }
    }

    @Test
    void sampleFrequenciesMatchTheSoftmax() {
        assertFrequenciesMatch(softmax(LOGITS, 1.0), sampleCounts(state(params().build(), 5), LOGITS, 100_000));
    }

    @Test
    void sampleFrequenciesMatchTheTemperatureScaledSoftmax() {
        assertFrequenciesMatch(softmax(LOGITS, 0.6), sampleCounts(state(params().temperature(0.6).build(), 5), LOGITS, 100_000));
    }

    @Test
    void topKSamplesFromTheRenormalizedTopTokens() {
        int[] counts = sampleCounts(state(params().topK(2).build(), 5), LOGITS, 50_000);
        double[] kept = softmax(new float[] {3.0f, 2.5f}, 1.0);
        assertFrequenciesMatch(new double[] {0, kept[0], 0, kept[1], 0}, counts);
    }

    @Test
    void topPAndMinPSampleOnlyTheTokensTheyKeep() {
        // softmax(LOGITS) = [0.075, 0.556, 0.004, 0.337, 0.028]: top-p 0.7 keeps {1, 3}
        int[] topP = sampleCounts(state(params().topP(0.7).build(), 5), LOGITS, 5000);
        assertEquals(5000, topP[1] + topP[3]);
        assertTrue(topP[1] > 0 && topP[3] > 0);
        // min-p 0.2 keeps tokens with p >= 0.2 * p(1): exp(x - 3) >= 0.2 means x >= 1.39, so {1, 3}
        int[] minP = sampleCounts(state(params().minP(0.2).build(), 5), LOGITS, 5000);
        assertEquals(5000, minP[1] + minP[3]);
        assertTrue(minP[1] > 0 && minP[3] > 0);
    }

    @Test
    void minTokensMasksEndOfSequenceAndStopIdsUntilReached() {
        SamplingParams p = params().temperature(0).minTokens(2).stopTokenIds(3).build();
        SequenceSamplingState s = new SequenceSamplingState(p, new int[0], List.of(1), 5, RandomSource.seeded(0).generatorFor(p, 0));
        assertEquals(0, sampler.sample(s, LOGITS.clone()).tokenId()); // 1 (EOS) and 3 (stop) masked
        assertEquals(0, sampler.sample(s, LOGITS.clone()).tokenId());
        assertEquals(1, sampler.sample(s, LOGITS.clone()).tokenId()); // two tokens out: EOS allowed again
    }

    @Test
    void logitBiasIsAddedToTheLogits() {
        SequenceSamplingState s = state(params().logitBias(Map.of(0, 2f, 2, -1.5f)).build(), 5);
        float[] logits = LOGITS.clone();
        sampler.processLogits(s, logits);
        assertArrayEquals(new float[] {3.0f, 3.0f, -3.5f, 2.5f, 0.0f}, logits);
    }

    @Test
    void allowedTokenIdsAreTheOnlyCandidates() {
        SequenceSamplingState s = state(params().allowedTokenIds(List.of(2, 4)).build(), 5);
        float[] logits = LOGITS.clone();
        sampler.processLogits(s, logits);
        float ninf = Float.NEGATIVE_INFINITY;
        assertArrayEquals(new float[] {ninf, ninf, -2.0f, ninf, 0.0f}, logits);
        int[] counts = sampleCounts(state(params().allowedTokenIds(List.of(2, 4)).build(), 5), LOGITS, 2000);
        assertEquals(2000, counts[2] + counts[4]);
    }

    @Test
    void repetitionPenaltyDividesPositiveAndMultipliesNegativeLogitsOfPromptAndOutputTokens() {
        SequenceSamplingState s = state(params().repetitionPenalty(2.0).build(), new int[] {1, 2, 1}, 5);
        s.append(0, Optional.empty());
        s.append(0, Optional.empty());
        float[] logits = LOGITS.clone();
        sampler.processLogits(s, logits);
        // tokens 0 (output), 1 and 2 (prompt) are penalized once each, however often they occur
        assertArrayEquals(new float[] {0.5f, 1.5f, -4.0f, 2.5f, 0.0f}, logits);
    }

    @Test
    void frequencyAndPresencePenaltiesSubtractPerOutputOccurrenceAndOnce() {
        SequenceSamplingState s = state(params().frequencyPenalty(0.5).presencePenalty(0.25).build(), new int[] {4, 4}, 5);
        for (int token : new int[] {1, 3, 1, 1}) {
            s.append(token, Optional.empty());
        }
        float[] logits = LOGITS.clone();
        sampler.processLogits(s, logits);
        // token 1: 3 - 0.5*3 - 0.25; token 3: 2.5 - 0.5 - 0.25; prompt-only token 4 untouched
        assertArrayEquals(new float[] {1.0f, 1.25f, -2.0f, 1.75f, 0.0f}, logits);
    }

    @Test
    void aBannedSequencesLastTokenIsMaskedWhereTheOutputEndsWithTheRest() {
        SequenceSamplingState s = state(params().temperature(0).build(), 5);
        s.banSequences(List.of(new int[]{0, 3, 0}, new int[]{4}));
        assertFalse(sampler.samplesPlainly(s), "bad words are applied on the host");
        assertEquals(0, sampler.sample(s, new float[]{3, 0, -2, 2.5f, 5}).tokenId(), "4 is banned outright");
        assertEquals(3, sampler.sample(s, new float[]{1, 0, -2, 3, 5}).tokenId());
        float[] afterZeroThree = {5, 0, 0, 1, 0};
        sampler.processLogits(s, afterZeroThree);
        assertArrayEquals(new float[]{Float.NEGATIVE_INFINITY, 0, 0, 1, Float.NEGATIVE_INFINITY}, afterZeroThree, "0 would complete 0 3 0");
        assertEquals(3, sampler.sample(s, new float[]{5, 0, 0, 1, 0}).tokenId());
        float[] afterThreeThree = {5, 0, 0, 1, 0};
        sampler.processLogits(s, afterThreeThree);
        assertEquals(5f, afterThreeThree[0], "the output ends 3 3: 0 completes nothing");
        assertThrows(dev.jvllm.InvalidRequestException.class, () -> state(params().build(), 5).banSequences(List.of(new int[]{5})));
    }

    @Test
    void aRowWithNothingLeftToDrawThrowsRatherThanDrawTheFirstId() {
        for (double temperature : new double[]{0, 1}) {
            SequenceSamplingState s = state(params().temperature(temperature).allowedTokenIds(List.of(2)).build(), 5);
            assertThrows(NothingToDrawException.class, () -> sampler.sample(s, new float[]{1, 2, Float.NEGATIVE_INFINITY, 4, 5}));
        }
        // The one allowed token is a stop token, masked until min_tokens (before, id 0 was drawn though not allowed).
        SamplingParams p = params().allowedTokenIds(List.of(3)).minTokens(1).stopTokenIds(3).build();
        assertThrows(NothingToDrawException.class, () -> sampler.sample(state(p, 5), LOGITS.clone()));
    }

    @Test
    void penaltiesFollowTokensAsTheyAreSampled() {
        SequenceSamplingState s = state(params().temperature(0).presencePenalty(2).build(), 3);
        float[] logits = {1.0f, 0.5f, 0.0f};
        assertEquals(0, sampler.sample(s, logits.clone()).tokenId());
        assertEquals(1, sampler.sample(s, logits.clone()).tokenId()); // 0 now at -1.0
        assertEquals(2, sampler.sample(s, logits.clone()).tokenId()); // 1 now at -1.5
    }

    @Test
    void sameSeedGivesTheSameTokens() {
        SamplingParams p = params().seed(1234).build();
        assertEquals(draw(p, 100), draw(p, 100));
    }

    @Test
    void differentSeedsGiveDifferentTokens() {
        assertNotEquals(draw(params().seed(1).build(), 100), draw(params().seed(2).build(), 100));
    }

    @Test
    void seededSequenceDrawsTheSameWhateverElseIsInTheBatch() {
        SamplingParams seeded = params().seed(99).build();
        SamplingParams unseeded = params().build();
        List<Integer> alone = draw(seeded, 50);

        RandomSource source = RandomSource.seeded(5);
        SequenceSamplingState other = new SequenceSamplingState(unseeded, new int[0], List.of(), 5, source.generatorFor(unseeded, 0));
        SequenceSamplingState mine = new SequenceSamplingState(seeded, new int[0], List.of(), 5, source.generatorFor(seeded, 0));
        List<Integer> inBatch = new ArrayList<>();
        for (int step = 0; step < 50; step++) {
            List<SampledToken> tokens = sampler.sample(List.of(other, mine), new float[][] {LOGITS.clone(), LOGITS.clone()});
            inBatch.add(tokens.get(1).tokenId());
        }
        assertEquals(alone, inBatch);
    }

    @Test
    void sequencesOfOneSeededRequestUseSeedPlusIndex() {
        SamplingParams request = params().n(2).seed(10).build();
        SamplingParams secondAlone = params().seed(11).build();
        RandomSource source = RandomSource.unseeded();
        assertEquals(source.generatorFor(secondAlone, 0).nextLong(), source.generatorFor(request, 1).nextLong());
        assertNotEquals(source.generatorFor(request, 0).nextLong(), source.generatorFor(request, 1).nextLong());
    }

    @Test
    void unseededRequestsRepeatUnderTheSameEngineSeed() {
        SamplingParams p = params().build();
        assertEquals(RandomSource.seeded(3).generatorFor(p, 0).nextLong(), RandomSource.seeded(3).generatorFor(p, 0).nextLong());
        RandomSource source = RandomSource.seeded(3);
        assertNotEquals(source.generatorFor(p, 0).nextLong(), source.generatorFor(p, 0).nextLong());
    }

    @Test
    void logprobsAreTheLogSoftmaxOfTheRawLogits() {
        SamplingParams p = params().logprobs(3).temperature(0.5).repetitionPenalty(1.3).logitBias(Map.of(2, 50f)).build();
        SequenceSamplingState s = state(p, new int[] {1}, 5);
        SampledToken token = sampler.sample(s, LOGITS.clone());
        assertEquals(2, token.tokenId()); // the bias decides the token, not its logprob
        double[] expected = logSoftmax(LOGITS);
        TokenLogprobs logprobs = token.logprobs().orElseThrow();
        assertEquals(expected[2], logprobs.token().logprob(), 1e-6);
        assertEquals(5, logprobs.token().rank());
        assertEquals(List.of(1, 3, 0), List.copyOf(logprobs.top().keySet()));
        int rank = 1;
        for (Map.Entry<Integer, Logprob> e : logprobs.top().entrySet()) {
            assertEquals(expected[e.getKey()], e.getValue().logprob(), 1e-6);
            assertEquals(rank++, e.getValue().rank());
        }
    }

    @Test
    void rankCountsTheTokensAtLeastAsLikely() {
        SequenceSamplingState s = state(params().temperature(0).logprobs(0).build(), 4);
        TokenLogprobs logprobs = sampler.sample(s, new float[] {2f, 5f, 5f, 1f}).logprobs().orElseThrow();
        assertEquals(2, logprobs.token().rank()); // vLLM: count of logprobs >= the token's, itself included
        assertEquals(Map.of(), logprobs.top());
    }

    @Test
    void logprobsAreAbsentUnlessRequested() {
        SequenceSamplingState s = state(params().build(), 5);
        assertTrue(sampler.sample(s, LOGITS.clone()).logprobs().isEmpty());
        assertTrue(s.cumulativeLogprob().isEmpty());
    }

    @Test
    void cumulativeLogprobSumsTheSampledTokensLogprobs() {
        SequenceSamplingState s = state(params().logprobs(1).build(), 5);
        double sum = 0;
        for (int i = 0; i < 10; i++) {
            sum += sampler.sample(s, LOGITS.clone()).logprobs().orElseThrow().token().logprob();
        }
        assertEquals(sum, s.cumulativeLogprob().orElseThrow(), 1e-9);
        assertEquals(10, s.outputLength());
    }

    @Test
    void promptLogprobsScoreEachTokenAfterTheFirstWithThePrecedingRow() {
        int[] prompt = {4, 1, 3, 0};
        float[][] rows = {LOGITS, {0f, 0f, 0f, 5f, 0f}, {9f, 0f, 0f, 0f, 0f}};
        List<TokenLogprobs> all = sampler.promptLogprobs(prompt, 0, rows, 2);
        assertEquals(3, all.size());
        assertEquals(logSoftmax(LOGITS)[1], all.get(0).token().logprob(), 1e-6);
        assertEquals(1, all.get(0).token().rank());
        assertEquals(List.of(1, 3), List.copyOf(all.get(0).top().keySet()));
        assertEquals(logSoftmax(rows[1])[3], all.get(1).token().logprob(), 1e-6);
        assertEquals(logSoftmax(rows[2])[0], all.get(2).token().logprob(), 1e-6);

        List<TokenLogprobs> secondChunk = sampler.promptLogprobs(prompt, 1, new float[][] {rows[1], rows[2]}, 2);
        assertEquals(all.subList(1, 3), secondChunk);
    }

    @Test
    void promptLogprobsRejectARowWithoutAFollowingPromptToken() {
        assertThrows(IllegalArgumentException.class,
                () -> sampler.promptLogprobs(new int[] {1, 2}, 0, new float[][] {LOGITS, LOGITS}, 1));
    }

    @Test
    void outOfVocabularyIdsFailWhenTheSequenceIsAdmitted() {
        InvalidRequestException prompt = assertThrows(InvalidRequestException.class,
                () -> state(params().build(), new int[] {1, 5}, 5));
        assertEquals("promptTokenIds", prompt.field());
        InvalidRequestException stop = assertThrows(InvalidRequestException.class,
                () -> state(params().stopTokenIds(7).build(), 5));
        assertEquals("stopTokenIds", stop.field());
    }

    @Test
    void logitsRowOfTheWrongWidthIsRejected() {
        assertThrows(IllegalArgumentException.class, () -> sampler.sample(state(params().build(), 6), LOGITS.clone()));
    }

    private List<Integer> draw(SamplingParams params, int steps) {
        SequenceSamplingState s = new SequenceSamplingState(params, new int[0], List.of(), 5,
                RandomSource.unseeded().generatorFor(params, 0));
        List<Integer> tokens = new ArrayList<>();
        for (int i = 0; i < steps; i++) {
            tokens.add(sampler.sample(s, LOGITS.clone()).tokenId());
        }
        return tokens;
    }

    /**
     * Pearson's chi-square test against {@code expected} probabilities, over the tokens with
     * non-zero probability; tokens with zero probability must never be drawn. The critical value
     * is the 0.999 quantile, so with a fixed seed a correct sampler passes and a wrong one fails
     * by a wide margin.
     */
    private static void assertFrequenciesMatch(double[] expected, int[] counts) {
        int draws = 0;
        for (int c : counts) {
            draws += c;
        }
        double chiSquare = 0;
        int categories = 0;
        for (int i = 0; i < counts.length; i++) {
            if (expected[i] == 0) {
                assertEquals(0, counts[i], "token " + i + " has probability 0");
                continue;
            }
            double e = expected[i] * draws;
            chiSquare += (counts[i] - e) * (counts[i] - e) / e;
            categories++;
        }
        double[] criticalByDegreesOfFreedom = {0, 10.83, 13.82, 16.27, 18.47};
        assertTrue(chiSquare < criticalByDegreesOfFreedom[categories - 1],
                "chi-square " + chiSquare + " over " + categories + " tokens");
    }

    @Test
    void aLargeVocabularyDrawsWhatSequentialWeightsDraw() {
        // From 32k entries on, the weights are computed in chunks on several threads.
        int vocab = 100_003;
        Random random = new Random(3);
        SamplingParams p = SamplingParams.builder().temperature(0.7).topP(0.9).seed(5).build();
        for (int trial = 0; trial < 20; trial++) {
            float[] logits = new float[vocab];
            for (int i = 0; i < vocab; i++) logits[i] = (float) (random.nextGaussian() * 3);
            float max = Float.NEGATIVE_INFINITY;
            for (float x : logits) max = Math.max(max, x);
            float[] weights = new float[vocab];
            for (int i = 0; i < vocab; i++) weights[i] = (float) Math.exp((logits[i] - max) / 0.7f);
            DistributionTruncation.applyTopP(weights, 0.9);
            SequenceSamplingState sampled = Sequences.stateWithGeneratorSeed(p, trial, vocab);
            SequenceSamplingState reference = Sequences.stateWithGeneratorSeed(p, trial, vocab);
            int expected = DistributionTruncation.draw(weights, reference.generator().nextDouble());
            assertEquals(expected, new Sampler().sample(sampled, logits.clone()).tokenId(), "trial " + trial);
        }
    }
}
