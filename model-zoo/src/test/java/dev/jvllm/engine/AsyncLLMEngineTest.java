package dev.jvllm.engine;

import dev.jvllm.CompletionOutput;
import dev.jvllm.EngineConfig;
import dev.jvllm.FinishReason;
import dev.jvllm.InvalidRequestException;
import dev.jvllm.LLM;
import dev.jvllm.RequestOutput;
import dev.jvllm.SamplingParams;
import dev.jvllm.config.ModelConfig;
import dev.jvllm.spi.Backend;
import dev.jvllm.spi.BackendOptions;
import dev.jvllm.spi.Backends;
import dev.jvllm.spi.CausalLM;
import dev.jvllm.spi.KvCache;
import dev.jvllm.spi.KvCacheSpec;
import dev.jvllm.spi.ModelContext;
import dev.jvllm.spi.ModelRegistry;
import dev.jvllm.spi.Tensor;
import dev.jvllm.weights.Checkpoint;
import org.junit.jupiter.api.Test;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.stream.Collectors;

import static dev.jvllm.engine.TinyLlamas.aloneOutputs;
import static dev.jvllm.engine.TinyLlamas.builder;
import static dev.jvllm.engine.TinyLlamas.greedy;
import static dev.jvllm.engine.TinyLlamas.kvBytesForBlocks;
import static dev.jvllm.engine.TinyLlamas.randomPrompts;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The engine on its own thread: concurrent submission, streaming, aborts, shutdown and death. */
class AsyncLLMEngineTest {

    private static final Path DEMO = DemoModel.path();
    private static final SamplingParams GREEDY = greedy(16);

    @Test
    void eightThreadsSubmittingWithRandomAbortsGetTheirGreedyOutputsAndLeakNothing() throws Exception {
        int threads = 8, perThread = 6;
        List<int[]> prompts = randomPrompts(30, new Random(31).ints(threads * perThread, 1, 70).toArray());
        List<List<Integer>> alone = aloneOutputs("llama-plain", 128, prompts, GREEDY);
        // A pool of 20 blocks also forces preemptions while requests come and go.
        try (AsyncLLMEngine engine = builder("llama-plain", 128)
                .kvCacheMemoryBytes(kvBytesForBlocks("llama-plain", 20)).buildAsync()) {
            // One abort certainly lands mid-run (the random ones below may come after their request ended).
            StepHold hold = new StepHold(1);
            engine.afterEachStep(hold);
            RequestStream held = engine.submit("held", prompts.getFirst(), GREEDY);
            hold.awaitHeld();
            held.abort();
            hold.release();
            CompletionOutput heldOutput = held.result().get(60, TimeUnit.SECONDS).outputs().getFirst();
            assertEquals(FinishReason.ABORT, heldOutput.finishReason());
            assertEquals(alone.getFirst().subList(0, 1), heldOutput.tokenIds(), "the first step's token");

            ExecutorService pool = Executors.newFixedThreadPool(threads);
            List<Future<Void>> submitters = new ArrayList<>();
            for (int t = 0; t < threads; t++) {
                int thread = t;
                submitters.add(pool.submit(() -> {
                    submitAndMaybeAbort(engine, thread, perThread, prompts, alone);
                    return null;
                }));
            }
            pool.shutdown();
            for (Future<Void> f : submitters) f.get(60, TimeUnit.SECONDS);
            engine.checkNoLeaks();
            assertEquals(0, engine.metrics().kvBlocksUsed());
        }
    }

    /** Submits this thread's share of the prompts, aborts some at random moments; checks every output. */
    private static void submitAndMaybeAbort(AsyncLLMEngine engine, int thread, int count, List<int[]> prompts,
                                           List<List<Integer>> alone) throws Exception {
        Random random = new Random(thread);
        Map<Integer, RequestStream> streams = new ConcurrentHashMap<>();
        for (int i = 0; i < count; i++) {
            int p = thread * count + i;
            streams.put(p, engine.submit("t" + thread + "-" + i, prompts.get(p), GREEDY));
            if (random.nextInt(3) == 0) {
                Thread.sleep(random.nextInt(4));
                streams.get(p).abort();
            }
        }
        for (var e : streams.entrySet()) {
            CompletionOutput out = e.getValue().result().get(60, TimeUnit.SECONDS).outputs().getFirst();
            List<Integer> expected = alone.get(e.getKey());
            if (out.finishReason() == FinishReason.ABORT) {
                assertEquals(expected.subList(0, out.tokenIds().size()), out.tokenIds(), "aborted output is a prefix");
            } else {
                assertEquals(expected, out.tokenIds(), "prompt " + e.getKey());
            }
        }
    }

    @Test
    void streamedDeltasConcatenateToTheFinalOutput() throws Exception {
        SamplingParams params = SamplingParams.builder().temperature(0).maxTokens(40).build();
        String reference;
        try (LLM llm = LLM.builder().model(DEMO.toString()).maxModelLen(256).build()) {
            reference = llm.generate("Once upon a time", params).text();
        }
        // A stop string from the middle of the reference: streaming must hold back text it may take away.
        String stop = reference.substring(reference.length() / 2, reference.length() / 2 + 3);
        SamplingParams stopping = SamplingParams.builder().temperature(0).maxTokens(40).stop(stop).build();
        // With speculative decoding too: a step then adds several tokens to a stream at once.
        for (dev.jvllm.SpeculativeConfig speculative : java.util.Arrays.asList(null, dev.jvllm.SpeculativeConfig.ngram(4, 1, 3))) {
        try (AsyncLLMEngine engine = LLM.builder().model(DEMO.toString()).maxModelLen(256).speculativeConfig(speculative).buildAsync()) {
            for (SamplingParams p : List.of(params, stopping)) {
                RequestStream stream = engine.submit("story-" + p.stop().size(), "Once upon a time", p);
                CollectingSubscriber subscriber = new CollectingSubscriber();
                stream.subscribe(subscriber);
                List<RequestOutput> deltas = subscriber.done.get(60, TimeUnit.SECONDS);
                RequestOutput last = stream.result().get();
                assertTrue(deltas.size() > 1, "output arrived in pieces");
                assertEquals(last.text(), deltas.stream().map(RequestOutput::text).collect(Collectors.joining()));
                assertEquals(last.outputs().getFirst().tokenIds(),
                        deltas.stream().flatMap(d -> d.outputs().stream()).flatMap(c -> c.tokenIds().stream()).toList());
                assertTrue(deltas.getLast().finished());
                assertEquals(p == params ? reference : reference.substring(0, reference.indexOf(stop)), last.text());
            }
            if (speculative != null) assertTrue(engine.metrics().acceptedDraftTokens() > 0, "no guess was kept");
        }
        }
    }

    @Test
    void cancellingTheSubscriptionAbortsTheRequest() throws Exception {
        try (AsyncLLMEngine engine = builder("llama-gqa", 256).buildAsync()) {
            StepHold hold = new StepHold(2);
            engine.afterEachStep(hold);
            RequestStream stream = engine.submit("cancelled", randomPrompts(32, 10).getFirst(), greedy(200));
            CollectingSubscriber subscriber = new CollectingSubscriber(2);
            stream.subscribe(subscriber);
            hold.awaitHeld();
            subscriber.done.get(60, TimeUnit.SECONDS);
            hold.release();
            RequestOutput last = stream.result().get(60, TimeUnit.SECONDS);
            assertEquals(FinishReason.ABORT, last.outputs().getFirst().finishReason());
            assertEquals(2, last.outputs().getFirst().tokenIds().size(), "the tokens of the two steps before the abort");
            engine.checkNoLeaks();
        }
    }

    @Test
    void cancellingTheResultAbortsTheRequest() throws Exception {
        try (AsyncLLMEngine engine = builder("llama-gqa", 256).buildAsync()) {
            StepHold hold = new StepHold(3);
            engine.afterEachStep(hold);
            RequestStream stream = engine.submit("cancelled", randomPrompts(33, 10).getFirst(), greedy(200));
            CollectingSubscriber subscriber = new CollectingSubscriber();
            stream.subscribe(subscriber);
            hold.awaitHeld();
            assertTrue(stream.result().cancel(true));
            hold.release();
            List<RequestOutput> deltas = subscriber.done.get(60, TimeUnit.SECONDS);
            assertEquals(FinishReason.ABORT, deltas.getLast().outputs().getFirst().finishReason());
            assertEquals(3, deltas.stream().mapToInt(d -> d.outputs().getFirst().tokenIds().size()).sum(),
                    "the tokens of the three steps before the abort");
            engine.checkNoLeaks();
        }
    }

    @Test
    void closeFailsRequestsInFlightFreesEverythingAndRefusesNewOnes() throws Exception {
        AsyncLLMEngine engine = builder("llama-gqa", 256).buildAsync();
        StepHold hold = new StepHold(1);
        engine.afterEachStep(hold);
        List<RequestStream> streams = new ArrayList<>();
        List<CollectingSubscriber> subscribers = new ArrayList<>();
        for (int i = 0; i < 4; i++) {
            RequestStream stream = engine.submit("r" + i, randomPrompts(34 + i, 20).getFirst(), greedy(230));
            CollectingSubscriber subscriber = new CollectingSubscriber();
            stream.subscribe(subscriber);
            streams.add(stream);
            subscribers.add(subscriber);
        }
        hold.awaitHeld();
        // close() queues its command, then joins the engine thread: release the engine once it waits there.
        Thread closer = Thread.ofPlatform().name("closer").start(engine::close);
        while (closer.getState() != Thread.State.WAITING) Thread.sleep(1);
        hold.release();
        closer.join(60_000);
        for (int i = 0; i < 4; i++) {
            RequestStream stream = streams.get(i);
            var e = assertThrows(ExecutionException.class, () -> stream.result().get(60, TimeUnit.SECONDS));
            assertInstanceOf(EngineClosedException.class, e.getCause());
            CollectingSubscriber subscriber = subscribers.get(i);
            var streamed = assertThrows(ExecutionException.class, () -> subscriber.done.get(60, TimeUnit.SECONDS));
            assertInstanceOf(EngineClosedException.class, streamed.getCause());
        }
        assertFalse(engine.isRunning());
        assertThrows(EngineClosedException.class, () -> engine.submit("late", new int[]{1, 2, 3}, GREEDY));
        engine.checkNoLeaks();
    }

    @Test
    void rejectedRequestFailsAloneAndTheOthersFinish() throws Exception {
        List<int[]> prompts = randomPrompts(40, 12, 30);
        List<List<Integer>> alone = aloneOutputs("llama-tied", 256, prompts, GREEDY);
        try (AsyncLLMEngine engine = builder("llama-tied", 256).buildAsync()) {
            StepHold hold = new StepHold(1);
            engine.afterEachStep(hold);
            RequestStream held = engine.submit("held", new int[]{1, 5}, GREEDY.toBuilder().maxTokens(60).ignoreEos(true).build());
            hold.awaitHeld();
            assertThrows(InvalidRequestException.class, () -> engine.submit("held", prompts.get(0), GREEDY),
                    "request id in use");
            RequestStream a = engine.submit("a", prompts.get(0), GREEDY);
            RequestStream tooLong = engine.submit("too-long", randomPrompts(41, 300).getFirst(), GREEDY);
            RequestStream outOfVocabulary = engine.submit("oov", new int[]{1, 600}, GREEDY);
            RequestStream b = engine.submit("b", prompts.get(1), GREEDY);
            hold.release();
            for (RequestStream rejected : List.of(tooLong, outOfVocabulary)) {
                var e = assertThrows(CompletionException.class, rejected.result()::join);
                assertInstanceOf(InvalidRequestException.class, e.getCause());
            }
            assertEquals(alone.get(0), a.result().get(60, TimeUnit.SECONDS).outputs().getFirst().tokenIds());
            assertEquals(alone.get(1), b.result().get(60, TimeUnit.SECONDS).outputs().getFirst().tokenIds());
            assertEquals(60, held.result().get(60, TimeUnit.SECONDS).outputs().getFirst().tokenIds().size());
            assertTrue(engine.isRunning());
            engine.checkNoLeaks();
        }
    }

    @Test
    void failingStepFailsEveryRequestAsEngineDeadRefusesNewOnesAndReleasesResources() throws Exception {
        Path dir = TinyLlamas.checkpoint("llama-plain");
        ModelConfig config = ModelConfig.load(dir);
        Checkpoint checkpoint = Checkpoint.open(dir);
        Backend backend = Backends.create("cpu", new BackendOptions(1));
        CausalLM model = ModelRegistry.find(config).load(new ModelContext(config, checkpoint, backend, 128));
        FailingModel failing = new FailingModel(model);
        AtomicBoolean released = new AtomicBoolean();
        EngineConfig engineConfig = new EngineConfig(128, 16, 1 << 20, 256, 2048, true, null, "cpu", 1);
        LLMEngine inner = new LLMEngine(failing, backend, null, List.of(), 128, engineConfig);
        AsyncLLMEngine engine = new AsyncLLMEngine(inner, () -> {
            model.close();
            backend.close();
            checkpoint.close();
            released.set(true);
        });
        List<RequestStream> streams = new ArrayList<>();
        for (int i = 0; i < 3; i++) streams.add(engine.submit("r" + i, randomPrompts(50 + i, 9).getFirst(), greedy(50)));
        failing.failNow();
        for (RequestStream stream : streams) {
            var e = assertThrows(ExecutionException.class, () -> stream.result().get(60, TimeUnit.SECONDS));
            assertInstanceOf(EngineDeadException.class, e.getCause());
            String message = e.getCause().getMessage();
            assertTrue(message.startsWith("engine dead") && message.contains("IllegalStateException"), message);
            assertFalse(message.contains("0x7fdeadbeef"), "the failure's own text (an address) reaches no client: " + message);
            Throwable root = e.getCause();
            while (root.getCause() != null) root = root.getCause();
            assertTrue(root.getMessage().contains("injected failure"), "the cause keeps it for the log");
        }
        var refused = assertThrows(EngineDeadException.class, () -> engine.submit("late", new int[]{1, 2}, GREEDY));
        assertTrue(refused.getMessage().startsWith("engine dead"), refused.getMessage());
        assertFalse(refused.getMessage().contains("0x7fdeadbeef"), refused.getMessage());
        engine.close();
        assertTrue(released.get(), "model, backend and checkpoint closed");
        engine.checkNoLeaks();
    }

    /** A model whose forward pass waits until {@link #failNow()} and then throws. */
    private static final class FailingModel implements CausalLM {
        private final CausalLM model;
        private final CountDownLatch failing = new CountDownLatch(1);

        FailingModel(CausalLM model) {
            this.model = model;
        }

        void failNow() {
            failing.countDown();
        }

        @Override
        public KvCacheSpec kvCacheSpec(int numBlocks, int blockSize) {
            return model.kvCacheSpec(numBlocks, blockSize);
        }

        @Override
        public int vocabSize() {
            return model.vocabSize();
        }

        @Override
        public Tensor forward(ForwardBatch batch, KvCache cache) {
            try {
                failing.await();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            throw new IllegalStateException("injected failure at MemorySegment{ address: 0x7fdeadbeef }");
        }
    }
}
