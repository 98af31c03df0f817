package dev.jvllm.engine;

import dev.jvllm.SamplingParams;
import dev.jvllm.sampling.RandomSource;
import dev.jvllm.sampling.SequenceSamplingState;

import java.util.List;
import java.util.stream.IntStream;

/** Engine requests without a model, and a stand-in for a step's forward pass, for scheduler tests. */
final class TestSequences {

    static final int VOCAB = 100;

    private TestSequences() {
    }

    /** A request of n sequences with the prompt {@code 0, 1, ..., promptLength - 1} shifted by {@code first}. */
    static RequestGroup group(String id, int first, int promptLength, int n) {
        int[] prompt = IntStream.range(first, first + promptLength).map(t -> t % VOCAB).toArray();
        return group(id, prompt, n, null);
    }

    static RequestGroup group(String id, int[] prompt, int n, String cacheSalt) {
        SamplingParams params = n == 1
                ? SamplingParams.builder().temperature(0).build()
                : SamplingParams.builder().temperature(1).n(n).build();
        RequestGroup group = new RequestGroup(id, null, prompt, params);
        RandomSource random = RandomSource.seeded(0);
        for (int i = 0; i < n; i++) {
            SequenceSamplingState state = new SequenceSamplingState(params, prompt, List.of(), VOCAB,
                    random.generatorFor(params, i));
            group.sequences.add(new EngineRequest(group, i, state,
                    new TextAccumulator(null, List.of(), false), cacheSalt));
        }
        return group;
    }

    /** One sequence with the prompt {@code first, first + 1, ...}. */
    static EngineRequest sequence(String id, int first, int promptLength) {
        return group(id, first, promptLength, 1).leader();
    }

    /** What a step does to the scheduled sequences: their tokens are computed, then sampled where a prompt is done. */
    static void run(List<Scheduler.Scheduled> scheduled, KvCacheManager kv) {
        for (Scheduler.Scheduled s : scheduled) {
            EngineRequest r = s.request();
            r.advanceComputed(s.numTokens());
            kv.cacheFullBlocks(r);
            if (r.numComputedTokens() == r.numTokens()) r.appendToken(7);
        }
    }

    /** The sequences of a step, in order. */
    static List<EngineRequest> requests(List<Scheduler.Scheduled> scheduled) {
        return scheduled.stream().map(Scheduler.Scheduled::request).toList();
    }

    /** Tokens per sequence of a step, in order. */
    static List<Integer> tokenCounts(List<Scheduler.Scheduled> scheduled) {
        return scheduled.stream().map(Scheduler.Scheduled::numTokens).toList();
    }
}
