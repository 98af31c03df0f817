package dev.jvllm.engine;

import dev.jvllm.ImageInput;
import dev.jvllm.SamplingParams;
import dev.jvllm.sampling.RandomSource;
import dev.jvllm.sampling.SequenceSamplingState;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.stream.IntStream;

import static dev.jvllm.engine.TestSequences.group;
import static dev.jvllm.engine.TestSequences.requests;
import static dev.jvllm.engine.TestSequences.run;
import static dev.jvllm.engine.TestSequences.sequence;
import static dev.jvllm.engine.TestSequences.tokenCounts;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

class SchedulerTest {

    /** Every scheduler a test made, with its cache: after each test, removing what it holds frees every block. */
    private final List<Map.Entry<Scheduler, KvCacheManager>> made = new ArrayList<>();

    private Scheduler tracked(Scheduler scheduler, KvCacheManager kv) {
        made.add(Map.entry(scheduler, kv));
        return scheduler;
    }

    /** As vLLM checks after every scheduler test: whatever a test left running, waiting or preempted gives every block back. */
    @AfterEach
    void everyBlockComesBackOnceTheRequestsAreRemoved() {
        for (Map.Entry<Scheduler, KvCacheManager> entry : made) {
            for (EngineRequest request : entry.getKey().requests()) entry.getKey().remove(request);
            entry.getValue().checkAllFree();
            assertTrue(entry.getKey().requests().isEmpty(), "no request state is left");
        }
    }

    @Test
    void runningRequestsDecodeBeforeWaitingOnesPrefill() {
        KvCacheManager kv = new KvCacheManager(32, 4, true);
        Scheduler scheduler = tracked(new Scheduler(kv, 8, 16), kv);
        EngineRequest old = sequence("old", 0, 5);
        scheduler.add(old);
        run(scheduler.schedule(), kv);
        EngineRequest late = sequence("late", 50, 20);
        scheduler.add(late);
        List<Scheduler.Scheduled> step = scheduler.schedule();
        assertEquals(List.of(old, late), requests(step));
        assertEquals(List.of(1, 7), tokenCounts(step), "one decode token, then the budget's rest of the prompt");
    }

    @Test
    void promptLongerThanTheBudgetIsPrefilledInChunks() {
        KvCacheManager kv = new KvCacheManager(32, 4, true);
        Scheduler scheduler = tracked(new Scheduler(kv, 6, 16), kv);
        EngineRequest r = sequence("r", 0, 15);
        scheduler.add(r);
        int steps = 0;
        while (r.numOutputTokens() == 0) {
            List<Scheduler.Scheduled> step = scheduler.schedule();
            assertTrue(tokenCounts(step).getFirst() <= 6);
            run(step, kv);
            steps++;
        }
        assertEquals(3, steps, "6 + 6 + 3 prompt tokens");
    }

    /**
     * A step's prompt chunks touch images whose features a vision model keeps whole for the step: with
     * room for 24 feature rows, a second request's chunk stops before its 20-row image while the first
     * request's 20-row image is in the step, and takes it in the next step.
     */
    @Test
    void promptChunkStopsBeforeAnImageWhoseFeaturesWouldNotFitTheStep() {
        KvCacheManager kv = new KvCacheManager(64, 4, false);
        Scheduler scheduler = tracked(new Scheduler(kv, 40, 16, Integer.MAX_VALUE, Integer.MAX_VALUE, 24), kv);
        EngineRequest first = withImages("first", 30, new PromptImage(2, 20, image(1)));
        EngineRequest second = withImages("second", 30, new PromptImage(5, 20, image(2)));
        scheduler.add(first);
        scheduler.add(second);
        List<Scheduler.Scheduled> step = scheduler.schedule();
        assertEquals(List.of(first, second), requests(step));
        assertEquals(List.of(30, 5), tokenCounts(step), "the second prompt up to its image");
        run(step, kv);
        List<Scheduler.Scheduled> next = scheduler.schedule();
        assertEquals(List.of(1, 25), tokenCounts(next), "a decode token, then the rest with its image");
    }

    /** One image alone always runs, even above the rows kept; an image two prompts share counts once. */
    @Test
    void aStepsFirstImageRunsWhateverItsSizeAndASharedImageCountsOnce() {
        KvCacheManager kv = new KvCacheManager(64, 4, false);
        Scheduler large = tracked(new Scheduler(kv, 40, 16, Integer.MAX_VALUE, Integer.MAX_VALUE, 10), kv);
        large.add(withImages("large", 30, new PromptImage(2, 20, image(3))));
        assertEquals(List.of(30), tokenCounts(large.schedule()));

        KvCacheManager kv2 = new KvCacheManager(64, 4, false);
        Scheduler shared = tracked(new Scheduler(kv2, 60, 16, Integer.MAX_VALUE, Integer.MAX_VALUE, 24), kv2);
        shared.add(withImages("a", 30, new PromptImage(2, 20, image(4))));
        shared.add(withImages("b", 30, new PromptImage(5, 20, image(4))));
        assertEquals(List.of(30, 30), tokenCounts(shared.schedule()));
    }

    /**
     * Running requests are cut too: a prompt of two 20-row images takes one a step, and a running
     * request whose next chunk starts at its image sits a step out while the other's image is in it.
     */
    @Test
    void runningRequestsChunksStopBeforeImagesThatDoNotFitAndResumeLater() {
        KvCacheManager kv = new KvCacheManager(64, 4, false);
        Scheduler scheduler = tracked(new Scheduler(kv, 40, 16, Integer.MAX_VALUE, Integer.MAX_VALUE, 24), kv);
        EngineRequest two = withImages("two", 80, new PromptImage(30, 20, image(7)), new PromptImage(50, 20, image(8)));
        EngineRequest one = withImages("one", 50, new PromptImage(10, 20, image(9)));
        scheduler.add(two);
        scheduler.add(one);
        List<Scheduler.Scheduled> first = scheduler.schedule();
        assertEquals(List.of(two), requests(first));
        assertEquals(List.of(40), tokenCounts(first), "up to the middle of the first image");
        run(first, kv);
        List<Scheduler.Scheduled> second = scheduler.schedule();
        assertEquals(List.of(two, one), requests(second));
        assertEquals(List.of(10, 10), tokenCounts(second), "each prompt up to its image that does not fit");
        run(second, kv);
        List<Scheduler.Scheduled> third = scheduler.schedule();
        assertEquals(List.of(two), requests(third), "the second request's chunk would start at its image");
        assertEquals(List.of(30), tokenCounts(third));
        run(third, kv);
        List<Scheduler.Scheduled> fourth = scheduler.schedule();
        assertEquals(List.of(two, one), requests(fourth));
        assertEquals(List.of(1, 39), tokenCounts(fourth), "a decode token, then the second prompt with its image");
    }

    /**
     * The images the next steps reach, for the model to prepare ahead: a running request's images not
     * yet reached, then the waiting requests', in order, each picture once, at most as many as asked.
     */
    @Test
    void upcomingImagesAreTheRunningRequestsUnreachedOnesThenTheWaitingOnesEachOnce() {
        KvCacheManager kv = new KvCacheManager(64, 4, false);
        Scheduler scheduler = tracked(new Scheduler(kv, 40, 16), kv);
        ImageInput a = image(10), b = image(11), c = image(12), d = image(13), e = image(14);
        EngineRequest two = withImages("two", 80, new PromptImage(2, 20, a), new PromptImage(50, 20, b));
        EngineRequest waiting = withImages("waiting", 60, new PromptImage(0, 20, c), new PromptImage(30, 20, d));
        EngineRequest same = withImages("same picture", 60, new PromptImage(0, 20, image(12)), new PromptImage(30, 20, e));
        scheduler.add(two);
        assertEquals(List.of(a, b), scheduler.upcomingImages(8));
        run(scheduler.schedule(), kv);  // 40 tokens of "two": its first image computed
        scheduler.add(waiting);
        scheduler.add(same);
        assertEquals(List.of(b, c, d, e), scheduler.upcomingImages(8), "c's copy in the third request once");
        assertEquals(List.of(b, c), scheduler.upcomingImages(2));
    }

    /** An image a chunk has reached is encoded whole and kept: the rest of its placeholders need nothing prepared. */
    @Test
    void anImageReachedByAChunkIsNoLongerUpcoming() {
        KvCacheManager kv = new KvCacheManager(64, 4, false);
        Scheduler scheduler = tracked(new Scheduler(kv, 16, 16), kv);
        ImageInput a = image(10), b = image(11);
        EngineRequest request = withImages("long", 80, new PromptImage(2, 8, a), new PromptImage(40, 8, b));
        scheduler.add(request);
        run(scheduler.schedule(), kv);  // 16 tokens: image a whole
        run(scheduler.schedule(), kv);  // 32
        assertEquals(List.of(b), scheduler.upcomingImages(8));
        run(scheduler.schedule(), kv);  // 48: b reached and passed
        assertEquals(List.of(), scheduler.upcomingImages(8));
    }

    /** A chunk that starts at an image that does not fit waits for a later step rather than splitting it. */
    @Test
    void requestWhoseNextChunkStartsAtAnImageThatDoesNotFitWaits() {
        KvCacheManager kv = new KvCacheManager(64, 4, false);
        Scheduler scheduler = tracked(new Scheduler(kv, 40, 16, Integer.MAX_VALUE, Integer.MAX_VALUE, 24), kv);
        EngineRequest first = withImages("first", 30, new PromptImage(2, 20, image(5)));
        EngineRequest second = withImages("second", 30, new PromptImage(0, 20, image(6)));
        scheduler.add(first);
        scheduler.add(second);
        List<Scheduler.Scheduled> step = scheduler.schedule();
        assertEquals(List.of(first), requests(step));
        assertEquals(1, scheduler.numWaiting());
        run(step, kv);
        assertEquals(List.of(first, second), requests(scheduler.schedule()));
    }

    private static EngineRequest withImages(String id, int promptLength, PromptImage... images) {
        int[] prompt = IntStream.range(0, promptLength).toArray();
        SamplingParams params = SamplingParams.builder().temperature(0).build();
        RequestGroup group = new RequestGroup(id, null, prompt, params, List.of(images));
        group.sequences.add(new EngineRequest(group, 0, new SequenceSamplingState(params, prompt, List.of(), TestSequences.VOCAB,
                RandomSource.seeded(0).generatorFor(params, 0)), new TextAccumulator(null, List.of(), false), null));
        return group.leader();
    }

    /** A 2 × 2 image whose content (so its hash) is {@code seed}'s. */
    private static ImageInput image(int seed) {
        byte[] rgb = new byte[12];
        java.util.Arrays.fill(rgb, (byte) seed);
        return ImageInput.rgb(2, 2, rgb);
    }

    @Test
    void newestRunningRequestIsPreemptedWhenBlocksRunOutAndLaterRecomputed() {
        KvCacheManager kv = new KvCacheManager(4, 4, false);
        Scheduler scheduler = tracked(new Scheduler(kv, 64, 16), kv);
        EngineRequest older = sequence("older", 0, 8);
        EngineRequest newer = sequence("newer", 20, 8);
        scheduler.add(older);
        scheduler.add(newer);
        run(scheduler.schedule(), kv);
        assertEquals(0, kv.freeBlocks());
        // Both now need a third block: the newer one gives its blocks up.
        List<Scheduler.Scheduled> step = scheduler.schedule();
        assertEquals(List.of(older), requests(step));
        assertEquals(1, scheduler.preemptions());
        assertEquals(0, newer.blockTable().size());
        assertEquals(0, newer.numComputedTokens());
        assertEquals(1, scheduler.numWaiting());
        run(step, kv);
        scheduler.remove(older);
        List<Scheduler.Scheduled> again = scheduler.schedule();
        assertEquals(List.of(newer), requests(again));
        assertEquals(List.of(9), tokenCounts(again), "prompt and its output token, recomputed");
    }

    /**
     * Speculative decoding: guesses follow a decode token, from the budget that the running requests'
     * known tokens and the admitted prompts leave; a prompt chunk makes none.
     */
    @Test
    void guessesTakeTheBudgetThatKnownTokensAndAdmittedPromptsLeave() {
        KvCacheManager kv = new KvCacheManager(32, 4, false);
        Scheduler scheduler = tracked(new Scheduler(kv, 16, 16), kv);
        List<Integer> limits = new ArrayList<>();
        scheduler.draftWith((request, limit) -> {
            limits.add(limit);
            return IntStream.range(0, Math.min(limit, 5)).map(i -> 40 + i).toArray();
        });
        EngineRequest old = sequence("old", 0, 5);
        scheduler.add(old);
        assertEquals(List.of(5), tokenCounts(scheduler.schedule()), "a prompt makes no guess");
        assertTrue(limits.isEmpty());
        old.advanceComputed(5);
        old.appendToken(7);
        scheduler.add(sequence("late", 50, 5));
        List<Scheduler.Scheduled> step = scheduler.schedule();
        assertEquals(List.of(6, 5), tokenCounts(step), "the decode token and five guesses, and the admitted prompt");
        assertArrayEquals(new int[]{40, 41, 42, 43, 44}, step.getFirst().drafts());
        assertEquals(1, step.getFirst().numKnownTokens());
        assertEquals(List.of(10), limits, "the budget left after the decode token and the prompt");
        assertEquals(3, old.blockTable().size(), "blocks for the guesses' slots: 11 tokens of 4");
    }

    /** A request's guesses never take the budget of another's known token, and the guesses' budget is shared. */
    @Test
    void guessesShareWhatIsLeftSoThatNoRequestStarves() {
        KvCacheManager kv = new KvCacheManager(32, 4, false);
        Scheduler scheduler = tracked(new Scheduler(kv, 8, 16), kv);
        scheduler.draftWith((request, limit) -> IntStream.range(0, limit).map(i -> 90).toArray());
        EngineRequest a = sequence("a", 0, 3), b = sequence("b", 20, 3);
        scheduler.add(a);
        scheduler.add(b);
        run(scheduler.schedule(), kv);
        List<Scheduler.Scheduled> step = scheduler.schedule();
        assertEquals(List.of(a, b), requests(step));
        assertEquals(List.of(4, 4), tokenCounts(step), "each its token and three of the six guesses left");
    }

    /** Where graphs record guessing steps, every decoding request verifies as many guesses as the most any does. */
    @Test
    void guessesArePaddedToOneCountInASmallStepOfDecodingRequests() {
        KvCacheManager kv = new KvCacheManager(32, 4, false);
        Scheduler scheduler = tracked(new Scheduler(kv, 64, 16), kv);
        Map<EngineRequest, int[]> guesses = new java.util.HashMap<>();
        Map<EngineRequest, Integer> room = new java.util.HashMap<>();
        scheduler.draftWith((request, limit) -> guesses.getOrDefault(request, new int[0]),
                request -> room.getOrDefault(request, 8), 64);
        EngineRequest a = sequence("a", 0, 5), b = sequence("b", 20, 5), c = sequence("c", 40, 5);
        for (EngineRequest r : List.of(a, b, c)) scheduler.add(r);
        run(scheduler.schedule(), kv);
        guesses.put(a, new int[]{7, 8, 9});
        guesses.put(b, new int[]{5});
        List<Scheduler.Scheduled> step = scheduler.schedule();
        assertEquals(List.of(4, 4, 4), tokenCounts(step), "each request's token and three guesses");
        assertArrayEquals(new int[]{7, 8, 9}, step.get(0).drafts());
        assertArrayEquals(new int[]{5, 5, 5}, step.get(1).drafts(), "its one guess repeated");
        assertArrayEquals(new int[]{7, 7, 7}, step.get(2).drafts(), "its last token repeated");
        assertEquals(List.of(3, 1, 0), step.stream().map(Scheduler.Scheduled::proposed).toList(), "the guesses the drafter made");
        assertEquals(3, c.blockTable().size(), "blocks for its padded guesses' slots: 9 tokens of 4");

        for (EngineRequest r : List.of(a, b, c)) {
            r.advanceComputed(1);
            r.appendToken(7);
        }
        room.put(c, 2);  // near its max_tokens: it may not verify three
        step = scheduler.schedule();
        assertEquals(List.of(4, 2, 1), tokenCounts(step), "the step keeps its own guesses");
    }

    @Test
    void paddingThatRunsOutOfBlocksGivesBackWhatItGrew() {
        KvCacheManager kv = new KvCacheManager(5, 4, false);
        Scheduler scheduler = tracked(new Scheduler(kv, 64, 16), kv);
        Map<EngineRequest, int[]> guesses = new java.util.HashMap<>();
        scheduler.draftWith((request, limit) -> guesses.getOrDefault(request, new int[0]), request -> 8, 64);
        EngineRequest a = sequence("a", 0, 3), b = sequence("b", 20, 3), c = sequence("c", 40, 3);
        for (EngineRequest r : List.of(a, b, c)) scheduler.add(r);
        run(scheduler.schedule(), kv);
        guesses.put(a, new int[]{9, 9, 9});
        List<Scheduler.Scheduled> step = scheduler.schedule();
        assertEquals(List.of(4, 1, 1), tokenCounts(step), "no block for c's padding: the step stays as it was");
        assertEquals(1, b.blockTable().size(), "the block grown for b's padding went back");
        assertEquals(1, kv.freeBlocks());
    }

    @Test
    void noGuessesAreMadeUpWhereNoRequestHasAny() {
        KvCacheManager kv = new KvCacheManager(32, 4, false);
        Scheduler scheduler = tracked(new Scheduler(kv, 64, 16), kv);
        scheduler.draftWith((request, limit) -> new int[0], request -> 8, 64);
        EngineRequest a = sequence("a", 0, 5), b = sequence("b", 20, 5);
        scheduler.add(a);
        scheduler.add(b);
        run(scheduler.schedule(), kv);
        assertEquals(List.of(1, 1), tokenCounts(scheduler.schedule()));
    }

    @Test
    void guessesThatDoNotFitTheFreeBlocksAreDroppedRatherThanPreemptAnyone() {
        KvCacheManager kv = new KvCacheManager(4, 4, false);
        Scheduler scheduler = tracked(new Scheduler(kv, 64, 16), kv);
        scheduler.draftWith((request, limit) -> new int[]{1, 2, 3, 4, 5, 6});
        EngineRequest older = sequence("older", 0, 7);
        EngineRequest newer = sequence("newer", 20, 7);
        scheduler.add(older);
        scheduler.add(newer);
        run(scheduler.schedule(), kv);
        assertEquals(0, kv.freeBlocks());
        // Each decodes position 7, in its second block: six guesses would need a third, which no one has.
        List<Scheduler.Scheduled> step = scheduler.schedule();
        assertEquals(List.of(older, newer), requests(step));
        assertEquals(List.of(1, 1), tokenCounts(step));
        assertEquals(0, step.getFirst().drafts().length);
        assertEquals(0, scheduler.preemptions());
    }

    @Test
    void requestAtTheHeadThatDoesNotFitWaitsWithoutCountingItsPrefixLookupAgain() {
        KvCacheManager kv = new KvCacheManager(4, 4, true);
        Scheduler scheduler = tracked(new Scheduler(kv, 64, 16), kv);
        EngineRequest running = sequence("running", 0, 12);
        scheduler.add(running);
        run(scheduler.schedule(), kv);
        EngineRequest blocked = sequence("blocked", 40, 8);
        scheduler.add(blocked);
        for (int i = 0; i < 3; i++) run(scheduler.schedule(), kv);
        assertEquals(1, scheduler.numWaiting());
        scheduler.remove(running);
        run(scheduler.schedule(), kv);
        assertEquals(12 + 8, kv.prefixQueryTokens(), "each request's lookup counted once, when admitted");
    }

    @Test
    void siblingsWaitForTheFirstSequenceThenStartOnItsPromptBlocks() {
        KvCacheManager kv = new KvCacheManager(32, 4, false);
        Scheduler scheduler = tracked(new Scheduler(kv, 64, 16), kv);
        RequestGroup group = group("n3", 0, 10, 3);
        group.sequences.forEach(scheduler::add);
        List<Scheduler.Scheduled> first = scheduler.schedule();
        assertEquals(List.of(group.leader()), requests(first));
        run(first, kv);
        List<Scheduler.Scheduled> second = scheduler.schedule();
        assertEquals(List.of(1, 2, 2), tokenCounts(second), "leader decodes; siblings compute the last block's 2 tokens");
        for (EngineRequest sibling : group.sequences.subList(1, 3)) {
            assertArrayEquals(group.leader().blockTable().prefix(2), sibling.blockTable().prefix(2));
        }
    }

    @Test
    void removedRunningRequestsLeaveAtOnceAndTheRestKeepTheirOrder() {
        KvCacheManager kv = new KvCacheManager(32, 4, false);
        Scheduler scheduler = tracked(new Scheduler(kv, 64, 16), kv);
        List<EngineRequest> all = List.of(sequence("a", 0, 3), sequence("b", 10, 3), sequence("c", 20, 3),
                sequence("d", 30, 3));
        all.forEach(scheduler::add);
        run(scheduler.schedule(), kv);
        scheduler.remove(all.get(1));
        scheduler.remove(all.get(3));
        assertEquals(2, scheduler.numRunning());
        assertEquals(32 - 2, kv.freeBlocks(), "the removed requests' blocks are freed at once");
        assertEquals(List.of(all.get(0), all.get(2)), scheduler.all());
        assertEquals(List.of(all.get(0), all.get(2)), requests(scheduler.schedule()));
        scheduler.remove(all.get(0));
        scheduler.remove(all.get(2));
        assertFalse(scheduler.hasUnfinished());
        assertEquals(List.of(), scheduler.schedule());
    }

    @Test
    void noMoreThanMaxNumSeqsRunAtOnce() {
        KvCacheManager kv = new KvCacheManager(32, 4, true);
        Scheduler scheduler = tracked(new Scheduler(kv, 64, 2), kv);
        for (int i = 0; i < 3; i++) scheduler.add(sequence("r" + i, 10 * i, 3));
        assertEquals(2, scheduler.schedule().size());
        assertEquals(2, scheduler.numRunning());
        assertEquals(1, scheduler.numWaiting());
    }

    /** An encoder-decoder request: a one-token decoder prompt after an encoder input of {@code encoderLength} tokens. */
    private static EngineRequest encoderDecoder(String id, int encoderLength) {
        RequestGroup group = group(id, new int[]{2}, 1, null);
        group.encoder(EncoderInput.of(IntStream.range(0, encoderLength).map(t -> (t + id.hashCode()) & 63).toArray()));
        return group.leader();
    }

    /**
     * Encoder-decoder requests are admitted while their encoder inputs fit the room kept for the
     * encoders' outputs together, each in whole blocks of 16 rows (40 rows: two of 10 tokens, not a
     * third), and a finished one makes room.
     */
    @Test
    void encoderDecoderRequestsRunWhileTheirEncoderOutputsFitTheRoomKept() {
        KvCacheManager kv = new KvCacheManager(32, 4, false);
        Scheduler scheduler = tracked(new Scheduler(kv, 64, 16, 40, 100), kv);
        EngineRequest a = encoderDecoder("a", 10), b = encoderDecoder("b", 10), c = encoderDecoder("c", 10);
        scheduler.add(a);
        scheduler.add(b);
        scheduler.add(c);
        List<Scheduler.Scheduled> first = scheduler.schedule();
        assertEquals(List.of(a, b), requests(first));
        assertEquals(32, scheduler.encoderRowsRunning());
        run(first, kv);
        a.finishReason = dev.jvllm.FinishReason.STOP;
        scheduler.remove(a);
        assertEquals(List.of(b, c), requests(scheduler.schedule()), "a's room went to c");
        assertEquals(32, scheduler.encoderRowsRunning());
    }

    /**
     * A new encoder input runs its encoder in the step that admits it, so its tokens count against
     * the step's encoder budget (24: the first request's 16 leave too little for the second's, which
     * waits a step), apart from the decoder's token budget (8: two encoders of 20 run together where
     * the encoder budget is 40); one whose encoder exceeds the budget still runs alone.
     */
    @Test
    void encoderTokensCountAgainstTheStepsEncoderBudget() {
        KvCacheManager kv = new KvCacheManager(32, 4, false);
        Scheduler scheduler = tracked(new Scheduler(kv, 64, 16, 1000, 24), kv);
        EngineRequest a = encoderDecoder("a", 16), b = encoderDecoder("b", 16);
        scheduler.add(a);
        scheduler.add(b);
        List<Scheduler.Scheduled> first = scheduler.schedule();
        assertEquals(List.of(a), requests(first));
        run(first, kv);
        assertEquals(List.of(a, b), requests(scheduler.schedule()));

        KvCacheManager wideKv = new KvCacheManager(32, 4, false);
        Scheduler wide = tracked(new Scheduler(wideKv, 8, 16, 1000, 40), wideKv);
        EngineRequest c = encoderDecoder("c", 20), d = encoderDecoder("d", 20);
        wide.add(c);
        wide.add(d);
        assertEquals(List.of(c, d), requests(wide.schedule()), "encoders longer than the decoder's budget still run together");

        KvCacheManager aloneKv = new KvCacheManager(32, 4, false);
        Scheduler alone = tracked(new Scheduler(aloneKv, 64, 16, 1000, 24), aloneKv);
        EngineRequest huge = encoderDecoder("huge", 40);
        alone.add(huge);
        assertEquals(List.of(huge), requests(alone.schedule()), "an encoder longer than the budget runs in a step of its own");
    }
}
