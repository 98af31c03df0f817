package dev.jvllm.engine;

import dev.jvllm.EngineConfig;
import dev.jvllm.LLM;
import dev.jvllm.RequestOutput;
import dev.jvllm.SamplingParams;
import dev.jvllm.config.ModelConfig;
import dev.jvllm.spi.Backend;
import dev.jvllm.spi.BackendOptions;
import dev.jvllm.spi.Backends;
import dev.jvllm.spi.CausalLM;
import dev.jvllm.spi.ModelContext;
import dev.jvllm.spi.ModelRegistry;
import dev.jvllm.weights.Checkpoint;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.FieldSource;
import org.junit.jupiter.params.provider.ValueSource;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;

import static dev.jvllm.engine.TinyLlamas.aloneOutputs;
import static dev.jvllm.engine.TinyLlamas.asPrompts;
import static dev.jvllm.engine.TinyLlamas.builder;
import static dev.jvllm.engine.TinyLlamas.greedy;
import static dev.jvllm.engine.TinyLlamas.kvBytesForBlocks;
import static dev.jvllm.engine.TinyLlamas.randomPrompts;
import static dev.jvllm.engine.TinyLlamas.tokens;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Async scheduling (a decode step queued before the tokens of the step ahead are read, those tokens
 * taken from the device's argmax) changes no output: greedy requests give the tokens each gives
 * alone, also when they stop on a token, are preempted, share cached prefixes, wait for a seat or
 * are aborted mid-run, and every block is free afterwards. The engine schedules ahead only on a
 * backend that queues its work (a GPU); here the CPU backend, which feeds sampled tokens from its
 * last argmax, poses as one, so that the engine takes the path it takes on a GPU.
 */
class AsyncSchedulingTest {

    /** An engine on the CPU backend posing as one that queues its work. */
    private record Queuing(Checkpoint checkpoint, Backend backend, CausalLM model, LLMEngine engine)
            implements AutoCloseable {

        static Queuing of(String name, int maxModelLen, long kvCacheBytes, int maxNumSeqs, boolean prefixCaching) {
            return of(name, maxModelLen, kvCacheBytes, maxNumSeqs, 2048, prefixCaching, true);
        }

        /** {@code queued} false: the CPU backend as it is, whose engine schedules nothing ahead. */
        static Queuing of(String name, int maxModelLen, long kvCacheBytes, int maxNumSeqs, int maxNumBatchedTokens,
                          boolean prefixCaching, boolean queued) {
            return of(name, maxModelLen, kvCacheBytes, maxNumSeqs, maxNumBatchedTokens, prefixCaching, queued, false);
        }

        /** {@code onDevice}: the backend also poses as one that draws sampled rows where the logits are. */
        static Queuing of(String name, int maxModelLen, long kvCacheBytes, int maxNumSeqs, int maxNumBatchedTokens,
                          boolean prefixCaching, boolean queued, boolean onDevice) {
            Path dir = TinyLlamas.checkpoint(name);
            ModelConfig config = ModelConfig.load(dir);
            Checkpoint checkpoint = Checkpoint.open(dir);
            Backend backend = TinyLlamas.withOverrides(Backends.create("cpu", new BackendOptions(1)),
                    Map.of("queuesWork", args -> queued, "samplesOnDevice", args -> onDevice));
            CausalLM model = ModelRegistry.find(config).load(new ModelContext(config, checkpoint, backend, maxModelLen));
            EngineConfig settings = new EngineConfig(maxModelLen, TinyLlamas.BLOCK_SIZE, kvCacheBytes, maxNumSeqs,
                    maxNumBatchedTokens, prefixCaching, 0L, "cpu", 1, 0.9, false, true);
            return new Queuing(checkpoint, backend, model,
                    new LLMEngine(model, backend, null, List.of(), maxModelLen, settings));
        }

        static Queuing of(String name, int maxModelLen) {
            return of(name, maxModelLen, 0, 256, true);
        }

        @Override
        public void close() {
            engine.close();
            model.close();
            backend.close();
            checkpoint.close();
        }
    }

    @ParameterizedTest(name = "{0}")
    @FieldSource("dev.jvllm.engine.TinyLlamas#CASES")
    void requestsOfDifferentLengthsGiveWhatEachGivesAlone(String model) {
        List<int[]> prompts = randomPrompts(11, 1, 7, 45, 3, 20, 33);
        List<SamplingParams> params = List.of(greedy(5), greedy(24), greedy(17), greedy(1), greedy(30), greedy(2));
        List<List<Integer>> alone = new ArrayList<>();
        for (int i = 0; i < prompts.size(); i++) {
            alone.add(aloneOutputs(model, 128, List.of(prompts.get(i)), params.get(i)).getFirst());
        }
        try (Queuing q = Queuing.of(model, 128)) {
            assertEquals(alone, generate(q.engine(), prompts, params));
            assertTrue(q.engine().stepsLaunchedAhead() > 20, "steps launched ahead: " + q.engine().stepsLaunchedAhead());
            q.engine().checkNoLeaks();
        }
    }

    @ParameterizedTest(name = "prefix caching {0}")
    @ValueSource(booleans = {true, false})
    void requestsWaitingForASeatJoinStepsQueuedAhead(boolean prefixCaching) {
        // Two seats for seven requests: the waiting ones are admitted into steps queued ahead.
        List<int[]> prompts = randomPrompts(17, 5, 40, 18, 33, 9, 27, 50);
        SamplingParams params = greedy(14);
        List<List<Integer>> alone = aloneOutputs("llama3-rope", 128, prompts, params);
        try (Queuing q = Queuing.of("llama3-rope", 128, 0, 2, prefixCaching)) {
            assertEquals(alone, generate(q.engine(), prompts, Collections.nCopies(prompts.size(), params)));
            assertTrue(q.engine().stepsLaunchedAhead() > 40, "steps launched ahead: " + q.engine().stepsLaunchedAhead());
            q.engine().checkNoLeaks();
        }
    }

    @Test
    void aRequestThatStopsOnATokenEndsThereWhileTheOthersGoOn() {
        List<int[]> prompts = randomPrompts(12, 9, 26, 14);
        List<List<Integer>> unstopped = aloneOutputs("llama-gqa", 128, prompts, greedy(20));
        // Each request stops on the token it gives at its 4th, 9th and 14th output.
        List<SamplingParams> params = new ArrayList<>();
        List<List<Integer>> expected = new ArrayList<>();
        int[] stopAt = {3, 8, 13};
        for (int i = 0; i < prompts.size(); i++) {
            List<Integer> tokens = unstopped.get(i);
            int stopToken = tokens.get(stopAt[i]);
            params.add(SamplingParams.builder().temperature(0).ignoreEos(true).maxTokens(20)
                    .stopTokenIds(List.of(stopToken)).build());
            expected.add(tokens.subList(0, tokens.indexOf(stopToken) + 1));
        }
        try (Queuing q = Queuing.of("llama-gqa", 128)) {
            assertEquals(expected, generate(q.engine(), prompts, params));
            assertTrue(q.engine().stepsLaunchedAhead() > 0);
            q.engine().checkNoLeaks();
        }
    }

    @ParameterizedTest(name = "prefix caching {0}")
    @ValueSource(booleans = {true, false})
    void preemptedRequestsStillGiveTheirTokens(boolean prefixCaching) {
        List<int[]> prompts = randomPrompts(13, 20, 60, 33, 41, 27, 52);
        SamplingParams params = greedy(32);
        List<List<Integer>> alone = aloneOutputs("llama-gqa", 96, prompts, params);
        try (Queuing q = Queuing.of("llama-gqa", 96, kvBytesForBlocks("llama-gqa", 8), 256, prefixCaching)) {
            assertEquals(alone, generate(q.engine(), prompts, Collections.nCopies(prompts.size(), params)));
            assertTrue(q.engine().metrics().preemptions() > 0, "no request was preempted: " + q.engine().metrics());
            q.engine().checkNoLeaks();
        }
    }

    @Test
    void aSecondRoundOnTheSamePromptsHitsTheBlocksTheFirstCached() {
        List<int[]> prompts = randomPrompts(14, 40, 37, 50);
        List<SamplingParams> params = Collections.nCopies(prompts.size(), greedy(20));
        List<List<Integer>> alone = aloneOutputs("llama3-rope", 128, prompts, params.getFirst());
        try (Queuing q = Queuing.of("llama3-rope", 128)) {
            assertEquals(alone, generate(q.engine(), prompts, params));
            long hitsBefore = q.engine().metrics().prefixCacheHits();
            assertEquals(alone, generate(q.engine(), prompts, params));
            long hits = q.engine().metrics().prefixCacheHits() - hitsBefore;
            assertTrue(hits >= 2 * 16 * 3, "the second round hit " + hits + " tokens");
            q.engine().checkNoLeaks();
        }
    }

    @Test
    void abortingOneRequestBetweenStepsLeavesTheOthersOutputUnchanged() {
        List<int[]> prompts = randomPrompts(15, 12, 30);
        SamplingParams params = greedy(25);
        List<List<Integer>> alone = aloneOutputs("llama-plain", 128, prompts, params);
        try (Queuing q = Queuing.of("llama-plain", 128)) {
            LLMEngine engine = q.engine();
            engine.addRequest("kept", prompts.get(0), params);
            engine.addRequest("aborted", prompts.get(1), params);
            List<Integer> kept = List.of();
            for (int step = 0; step < 6; step++) kept = lastTokens(engine.step(), "kept", kept);
            assertTrue(engine.abort("aborted"));
            while (engine.hasUnfinishedRequests()) kept = lastTokens(engine.step(), "kept", kept);
            assertEquals(alone.get(0), kept);
            assertTrue(engine.stepsLaunchedAhead() > 0);
            engine.checkNoLeaks();
        }
    }

    @Test
    void sampledRequestsBesideGreedyOnesGiveWhatTheyGiveWithoutIt() {
        List<int[]> prompts = randomPrompts(16, 10, 22, 31);
        List<SamplingParams> params = List.of(greedy(16),
                SamplingParams.builder().temperature(0.8).topP(0.9).seed(7).ignoreEos(true).maxTokens(16).build(),
                greedy(12));
        List<List<Integer>> sync;
        try (LLM llm = builder("llama-tied", 128).build()) {
            sync = generate(llm.engine(), prompts, params);
        }
        try (Queuing q = Queuing.of("llama-tied", 128)) {
            assertEquals(sync, generate(q.engine(), prompts, params));
            q.engine().checkNoLeaks();
        }
    }

    @Test
    void onABackendThatRunsEachPassAsItIsCalledNoStepIsQueuedAhead() {
        // The CPU backend as it is (named: on a GPU machine the default device is CUDA, which queues):
        // queuing the next step first would only hold each token back a step.
        List<int[]> prompts = randomPrompts(18, 12, 30);
        try (LLM llm = builder("llama-plain", 128).device("cpu").asyncScheduling(true).build()) {
            List<List<Integer>> alone = new ArrayList<>();
            for (int[] prompt : prompts) alone.addAll(tokens(llm.generatePrompts(asPrompts(List.of(prompt)), greedy(10))));
            assertEquals(alone, tokens(llm.generatePrompts(asPrompts(prompts), greedy(10))));
            assertEquals(0, llm.engine().stepsLaunchedAhead());
        }
    }

    /**
     * Random workloads run by the engine that schedules ahead and by one that does not, on the
     * same model and settings: greedy and seeded sampled requests (n of 1 or 2), stop tokens, a
     * small KV pool (preemption), few seats and a small token budget (waiting, chunked prefill),
     * prefix caching or not, and one request aborted after a random number of steps. Every
     * sequence's tokens and finish reason must agree.
     */
    @ParameterizedTest(name = "workload {0}")
    @ValueSource(ints = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11})
    void randomWorkloadsEndAsTheyDoWithoutIt(int seed) {
        randomWorkload(seed, false);
    }

    /** As above, with sampled rows drawn where the logits are (and so queued ahead too). */
    @ParameterizedTest(name = "workload {0}")
    @ValueSource(ints = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11})
    void randomWorkloadsSampledOnTheDeviceEndAsTheyDoWithoutIt(int seed) {
        randomWorkload(seed, true);
    }

    private void randomWorkload(int seed, boolean onDevice) {
        java.util.Random random = new java.util.Random(1000 + seed);
        int requests = 3 + random.nextInt(6);
        List<int[]> prompts = new ArrayList<>();
        List<SamplingParams> params = new ArrayList<>();
        for (int i = 0; i < requests; i++) {
            prompts.add(randomPrompts(random.nextLong(), 1 + random.nextInt(50)).getFirst());
            SamplingParams.Builder b = SamplingParams.builder().ignoreEos(true).maxTokens(1 + random.nextInt(30));
            if (random.nextInt(3) == 0) {
                b.temperature(0.7 + random.nextDouble()).seed(random.nextInt(100)).n(random.nextBoolean() ? 2 : 1);
                if (random.nextBoolean()) b.topP(0.5 + 0.5 * random.nextDouble());
                if (random.nextBoolean()) b.topK(1 + random.nextInt(20));
            } else {
                b.temperature(0);
            }
            if (random.nextInt(3) == 0) b.stopTokenIds(List.of(random.nextInt(TinyLlamas.VOCAB), random.nextInt(TinyLlamas.VOCAB)));
            params.add(b.build());
        }
        String model = TinyLlamas.CASES.get(random.nextInt(TinyLlamas.CASES.size()));
        long kvBytes = random.nextBoolean() ? 0 : kvBytesForBlocks(model, 9 + random.nextInt(12));
        int seats = 2 + random.nextInt(7);
        int budget = random.nextBoolean() ? 2048 : 8 + random.nextInt(40);
        boolean prefixCaching = random.nextBoolean();
        int abortAfter = random.nextInt(25);
        String aborted = "r" + random.nextInt(requests);
        Map<String, List<String>> plain, ahead;
        long launchedAhead;
        try (Queuing q = Queuing.of(model, 96, kvBytes, seats, budget, prefixCaching, false)) {
            plain = run(q.engine(), prompts, params, aborted, abortAfter);
        }
        try (Queuing q = Queuing.of(model, 96, kvBytes, seats, budget, prefixCaching, true, onDevice)) {
            ahead = run(q.engine(), prompts, params, aborted, abortAfter);
            launchedAhead = q.engine().stepsLaunchedAhead();
        }
        assertEquals(plain, ahead, "model " + model + ", kv " + kvBytes + ", seats " + seats + ", budget " + budget
                + ", prefix caching " + prefixCaching + ", " + launchedAhead + " steps queued ahead");
    }

    /** Each request's sequences as "tokens finish-reason", after running the workload to the end. */
    private static Map<String, List<String>> run(LLMEngine engine, List<int[]> prompts, List<SamplingParams> params,
                                                 String aborted, int abortAfter) {
        Map<String, List<String>> results = new java.util.TreeMap<>();
        for (int i = 0; i < prompts.size(); i++) engine.addRequest("r" + i, prompts.get(i), params.get(i));
        int steps = 0;
        while (engine.hasUnfinishedRequests()) {
            List<RequestOutput> outputs = new ArrayList<>(engine.step());
            if (++steps == abortAfter) {
                RequestOutput last = engine.abortWithOutput(aborted);
                if (last != null) outputs.add(last);
            }
            for (RequestOutput output : outputs) {
                if (!output.finished()) continue;
                results.put(output.requestId(), output.outputs().stream()
                        .map(c -> c.tokenIds() + " " + c.finishReason()).toList());
            }
        }
        engine.checkNoLeaks();
        return results;
    }

    /** Each prompt with its own parameters, all added to the engine together; outputs' tokens in order. */
    private static List<List<Integer>> generate(LLMEngine engine, List<int[]> prompts, List<SamplingParams> params) {
        List<List<Integer>> outputs = new ArrayList<>(Collections.nCopies(prompts.size(), null));
        String round = "g" + System.identityHashCode(outputs) + "-";
        for (int i = 0; i < prompts.size(); i++) engine.addRequest(round + i, prompts.get(i), params.get(i));
        while (engine.hasUnfinishedRequests()) {
            for (RequestOutput output : engine.step()) {
                if (output.finished()) {
                    outputs.set(Integer.parseInt(output.requestId().substring(round.length())),
                            output.outputs().getFirst().tokenIds());
                }
            }
        }
        return outputs;
    }

    private static List<Integer> lastTokens(List<RequestOutput> outputs, String requestId, List<Integer> before) {
        for (RequestOutput output : outputs) {
            if (output.requestId().equals(requestId)) return output.outputs().getFirst().tokenIds();
        }
        return before;
    }
}
