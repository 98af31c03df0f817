package dev.jvllm.models;

import dev.jvllm.BeamSearchOutput;
import dev.jvllm.BeamSearchParams;
import dev.jvllm.InvalidRequestException;
import dev.jvllm.LLM;
import dev.jvllm.Logprob;
import dev.jvllm.Prompt;
import dev.jvllm.RequestOutput;
import dev.jvllm.SamplingParams;
import org.junit.jupiter.api.Test;

import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.stream.IntStream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Beam search on a golden Llama: width 1 is greedy decoding, and at width 4 each returned sequence's
 * cumulative log probability is what scoring the prompt plus the sequence gives, the sequences are
 * distinct and best first.
 */
class BeamSearchTest {

    private static final int[] PROMPT = {1, 15, 27, 3, 90, 41};

    @Test
    void widthOneIsGreedyAndWiderBeamsScoreTheirOwnTokens() {
        try (LLM llm = LLM.builder().model(Golden.root().resolve("llama-plain").toString()).device("cpu").build()) {
            List<Integer> greedy = llm.generate(PROMPT, SamplingParams.builder().temperature(0).maxTokens(6).ignoreEos(true).build())
                    .outputs().getFirst().tokenIds();
            BeamSearchOutput one = llm.beamSearch(List.of(Prompt.tokens(PROMPT)), new BeamSearchParams(1, 6, true, 0, 0)).getFirst();
            assertEquals(greedy, one.sequences().getFirst().tokenIds());

            List<BeamSearchOutput> wide = llm.beamSearch(List.of(Prompt.tokens(PROMPT), Prompt.tokens(3, 9, 27)),
                    new BeamSearchParams(4, 6, true, 0, 0));
            assertEquals(2, wide.size());
            for (int p = 0; p < 2; p++) {
                int[] prompt = p == 0 ? PROMPT : new int[]{3, 9, 27};
                List<BeamSearchOutput.Sequence> sequences = wide.get(p).sequences();
                assertEquals(4, sequences.size());
                assertEquals(4, new HashSet<>(sequences.stream().map(BeamSearchOutput.Sequence::tokenIds).toList()).size(), "distinct");
                for (int i = 0; i < sequences.size(); i++) {
                    BeamSearchOutput.Sequence s = sequences.get(i);
                    if (i > 0) assertTrue(s.score() <= sequences.get(i - 1).score(), "best first");
                    assertEquals(6, s.tokenIds().size());
                    assertEquals(scored(llm, prompt, s.tokenIds()), s.cumulativeLogprob(), 1e-3, "sequence " + i);
                }
            }
        }
        assertThrows(InvalidRequestException.class, () -> new BeamSearchParams(0, 4));
    }

    /** What a search multiplies is bounded as a request's n is: its width, and a finite temperature. */
    @Test
    void aWidthOrTemperatureBeyondTheBoundsIsRefusedNamingIt() {
        var wide = assertThrows(InvalidRequestException.class, () -> new BeamSearchParams(SamplingParams.MAX_N + 1, 4));
        assertEquals("beamWidth", wide.field());
        new BeamSearchParams(SamplingParams.MAX_N, 4);
        for (double temperature : new double[]{Double.POSITIVE_INFINITY, Double.NaN, SamplingParams.MAX_TEMPERATURE + 0.5, -1}) {
            var refused = assertThrows(InvalidRequestException.class, () -> new BeamSearchParams(2, 4, false, temperature, 1.0));
            assertEquals("temperature", refused.field(), "temperature " + temperature);
        }
    }

    /** The sum of the log probabilities of {@code tokens} after {@code prompt}, from prompt logprobs. */
    private static double scored(LLM llm, int[] prompt, List<Integer> tokens) {
        int[] all = IntStream.concat(IntStream.of(prompt), tokens.stream().mapToInt(Integer::intValue)).toArray();
        RequestOutput out = llm.generate(all, SamplingParams.builder().temperature(0).maxTokens(1).promptLogprobs(0).build());
        double sum = 0;
        for (int i = prompt.length; i < all.length; i++) {
            Map<Integer, Logprob> at = out.promptLogprobs().get(i);
            sum += at.get(all[i]).logprob();
        }
        return sum;
    }
}
