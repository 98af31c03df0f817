package dev.jvllm.engine;

import dev.jvllm.spi.Backend;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Deque;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.IntStream;

/**
 * Decides each step which requests run and how many of their tokens: running requests first (one
 * decode token, or the rest of a chunked prompt), then waiting ones while the token budget and the
 * sequence limit allow. Prompts longer than the budget are split over steps (chunked prefill). When
 * KV blocks run out, the most recently admitted running request is preempted: its blocks are freed
 * and it is recomputed later from its tokens, so it finishes with the output it would have had.
 *
 * <p>The sequences of an n > 1 request wait behind their first one until it has computed the
 * prompt, then start on its full prompt blocks; only the partial last block is computed again.
 */
final class Scheduler {

    /**
     * One request's share of a step: {@code numTokens} tokens from its first uncomputed one, the last
     * {@code drafts.length} of them guessed tokens past its end (speculative decoding) to be verified,
     * the first {@code proposed} of those the drafter's (the rest repeat the last to give the step one
     * shape, {@link #uniformGuesses}).
     */
    record Scheduled(EngineRequest request, int numTokens, int[] drafts, int proposed) {
        Scheduled(EngineRequest request, int numTokens) {
            this(request, numTokens, NO_DRAFTS, 0);
        }

        Scheduled(EngineRequest request, int numTokens, int[] drafts) {
            this(request, numTokens, drafts, drafts.length);
        }

        /** The tokens of the request itself, without the guesses. */
        int numKnownTokens() {
            return numTokens - drafts.length;
        }
    }

    static final int[] NO_DRAFTS = new int[0];

    /** Guesses tokens to follow a decoding request (speculative decoding); called for several requests at once. */
    @FunctionalInterface
    interface Drafter {
        /** At most {@code limit} guessed tokens to follow the request's last token; empty for none. */
        int[] draft(EngineRequest request, int limit);
    }

    private Drafter drafter;
    /** The most guesses each request may verify in its next step (for padding guesses to one shape). */
    private java.util.function.ToIntFunction<EngineRequest> guessRoom;
    /** The most tokens of a step whose guesses are padded to one shape for a recorded graph; 0: never padded. */
    private int uniformStepTokens;

    private final KvCacheManager kv;
    private final int maxNumBatchedTokens;
    private final int maxNumSeqs;
    private final Deque<EngineRequest> waiting = new ArrayDeque<>();
    /**
     * In admission order. A request finished while running leaves it lazily: {@link #remove} clears
     * its {@link EngineRequest#running} flag and the list drops such requests in one pass before it
     * is next read, instead of a search per finished request (256 finishing at once were 256 scans).
     */
    private final List<EngineRequest> running = new ArrayList<>();
    private int removedFromRunning;
    private long preemptions;
    /**
     * Encoder-decoder models: the encoder tokens whose outputs the model keeps at once, and the rows
     * the running requests take there (by encoder input, sequences of one request counted once; each
     * input's rows from a multiple of {@link Backend#CROSS_ATTENTION_ROW_ALIGNMENT}, so its length rounded up to one).
     */
    private final int encoderTokensKept;
    private final int encoderTokensAStep;
    private final Map<String, Integer> encodersRunning = new HashMap<>();
    private long encoderRowsRunning;
    /** Vision-language models: the feature rows of the images one step's prompt chunks may touch together. */
    private final int imageRowsAStep;

    Scheduler(KvCacheManager kv, int maxNumBatchedTokens, int maxNumSeqs) {
        this(kv, maxNumBatchedTokens, maxNumSeqs, Integer.MAX_VALUE, Integer.MAX_VALUE);
    }

    /**
     * @param encoderTokensKept  an encoder-decoder model's room for encoder outputs: requests are
     *                           admitted while their encoder inputs fit it together (one alone always may)
     * @param encoderTokensAStep the encoder tokens one step may encode (vLLM's encoder compute budget:
     *                           the larger of the step's tokens and a longest encoder input), one input alone always
     */
    Scheduler(KvCacheManager kv, int maxNumBatchedTokens, int maxNumSeqs, int encoderTokensKept, int encoderTokensAStep) {
        this(kv, maxNumBatchedTokens, maxNumSeqs, encoderTokensKept, encoderTokensAStep, Integer.MAX_VALUE);
    }

    /**
     * @param imageRowsAStep a vision-language model's rows kept for image features: a step's prompt
     *                       chunks stop before an image whose rows would take the images they touch
     *                       past it (each image counted once, whole; the step's first image always runs)
     */
    Scheduler(KvCacheManager kv, int maxNumBatchedTokens, int maxNumSeqs, int encoderTokensKept, int encoderTokensAStep,
              int imageRowsAStep) {
        this.kv = kv;
        this.maxNumBatchedTokens = maxNumBatchedTokens;
        this.maxNumSeqs = maxNumSeqs;
        this.encoderTokensKept = encoderTokensKept;
        this.encoderTokensAStep = encoderTokensAStep;
        this.imageRowsAStep = imageRowsAStep;
    }

    void add(EngineRequest request) {
        waiting.addLast(request);
    }

    /** Lets running requests that decode a token verify guesses after it, as budget and blocks allow. */
    void draftWith(Drafter drafter) {
        draftWith(drafter, request -> 0, 0);
    }

    /**
     * As {@link #draftWith(Drafter)}, and a step of decoding requests of at most {@code uniformStepTokens}
     * tokens (once padded as {@link CapturedDecode} pads sequences) in which some verify guesses has every
     * request verify as many ({@link #uniformGuesses}), within {@code room}: one shape a recorded graph serves.
     */
    void draftWith(Drafter drafter, java.util.function.ToIntFunction<EngineRequest> room, int uniformStepTokens) {
        this.drafter = drafter;
        this.guessRoom = room;
        this.uniformStepTokens = uniformStepTokens;
    }

    int numWaiting() {
        return waiting.size();
    }

    int numRunning() {
        return running.size() - removedFromRunning;
    }

    long preemptions() {
        return preemptions;
    }

    boolean hasUnfinished() {
        return !waiting.isEmpty() || numRunning() > 0;
    }

    List<Scheduled> schedule() {
        dropRemoved();
        List<Scheduled> out = new ArrayList<>(running.size());
        int budget = maxNumBatchedTokens;
        boolean preempted = false;
        StepImages images = new StepImages(imageRowsAStep);
        for (int i = 0; i < running.size() && budget > 0; i++) {
            EngineRequest request = running.get(i);
            int tokens = images.fit(request, request.numComputedTokens(),
                    Math.min(request.numTokens() - request.numComputedTokens(), budget));
            if (tokens <= 0) continue;
            while (!kv.grow(request, tokens)) {
                EngineRequest victim = running.removeLast();
                preempt(victim);
                preempted = true;
                if (victim == request) {
                    request = null;
                    break;
                }
            }
            if (request == null) break;
            images.take();
            out.add(new Scheduled(request, tokens));
            budget -= tokens;
        }
        long encoderLeft = encoderTokensAStep;
        while (!preempted && budget > 0 && !waiting.isEmpty() && running.size() < maxNumSeqs) {
            EngineRequest request = waiting.peekFirst();
            if (waitsForLeader(request)) break;
            // A request whose encoder input is new to the running ones runs its encoder in this step:
            // its tokens count against the step's encoder budget, and its outputs against the room kept for them.
            int encoderTokens = newEncoderTokens(request);
            if (encoderTokens > 0 && !out.isEmpty()
                    && (encoderTokens > encoderLeft || encoderRowsRunning + keptRows(encoderTokens) > encoderTokensKept)) {
                break;
            }
            KvCacheManager.PrefixMatch prefix = kv.findSharedPrefix(request);
            int from = request.numComputedTokens() + prefix.blocks().length * kv.blockSize();
            int wanted = Math.min(request.numTokens() - from, budget);
            int tokens = images.fit(request, from, wanted);
            if (tokens <= 0 && wanted > 0 || !kv.admit(request, tokens, prefix)) break;
            waiting.removeFirst();
            running.add(request);
            request.running = true;
            holdEncoder(request);
            images.take();
            out.add(new Scheduled(request, tokens));
            budget -= tokens;
            encoderLeft -= encoderTokens;
        }
        if (drafter == null || preempted) return out;
        return uniformGuesses(withGuesses(out, budget));
    }

    /**
     * The step with guesses after the decode tokens of the requests that may verify some, from the
     * budget the known tokens and the admitted prompts left: each such request may take an equal share
     * of what is left when its turn comes, so that no request's guesses starve a later one, and guesses
     * whose slots the free blocks cannot hold are dropped rather than preempt anyone.
     */
    private List<Scheduled> withGuesses(List<Scheduled> out, int budget) {
        int eligible = 0;
        for (Scheduled s : out) if (mayGuess(s)) eligible++;
        if (eligible == 0 || budget <= 0) return out;
        // The lookups read each request's whole sequence: many of them run on several threads, each up to
        // the whole budget, and are cut to their shares below.
        int[][] proposed = new int[out.size()][];
        int limit = budget;
        IntStream indices = IntStream.range(0, out.size()).filter(i -> mayGuess(out.get(i)));
        (eligible >= PARALLEL_LOOKUPS ? indices.parallel() : indices)
                .forEach(i -> proposed[i] = drafter.draft(out.get(i).request(), limit));
        List<Scheduled> guessed = new ArrayList<>(out.size());
        for (int i = 0; i < out.size(); i++) {
            Scheduled s = out.get(i);
            if (!mayGuess(s)) {
                guessed.add(s);
                continue;
            }
            int share = budget / eligible--;
            int[] drafts = proposed[i].length > share ? Arrays.copyOf(proposed[i], share) : proposed[i];
            if (drafts.length > 0 && kv.grow(s.request(), 1 + drafts.length)) {
                guessed.add(new Scheduled(s.request(), 1 + drafts.length, drafts));
                budget -= drafts.length;
            } else {
                guessed.add(s);
            }
        }
        return guessed;
    }

    /** Requests from which the guesses' lookups run on several threads. */
    private static final int PARALLEL_LOOKUPS = 16;

    /** Whether a scheduled request decodes its one known token and so may verify guesses after it. */
    private static boolean mayGuess(Scheduled s) {
        EngineRequest r = s.request();
        return s.numKnownTokens() == 1 && !r.hasPendingToken() && r.numComputedTokens() == r.numTokens() - 1;
    }

    /**
     * Where every request of a step decodes one known token, some verify guesses and the step is small
     * enough ({@link #uniformStepTokens}), every request verifies as many guesses as the most any does:
     * its own, then its last guess (or token) repeated, so that the step has one shape a recorded graph
     * serves. A padding guess the draw happens to equal is kept like any other. The step stays as it was
     * where a request has no room for that many, or blocks or budget run short.
     */
    private List<Scheduled> uniformGuesses(List<Scheduled> out) {
        if (uniformStepTokens == 0 || out.isEmpty()) return out;
        int most = 0;
        for (Scheduled s : out) {
            if (!mayGuess(s)) return out;
            most = Math.max(most, s.drafts().length);
        }
        long tokens = (long) out.size() * (most + 1);
        if (most == 0 || tokens > maxNumBatchedTokens
                || (long) CapturedDecode.paddedSize(out.size()) * (most + 1) > uniformStepTokens) {
            return out;
        }
        for (Scheduled s : out) if (s.drafts().length < most && guessRoom.applyAsInt(s.request()) < most) return out;
        int[] tableSizes = new int[out.size()];
        for (int i = 0; i < out.size(); i++) {
            EngineRequest r = out.get(i).request();
            tableSizes[i] = r.blockTable().size();
            if (out.get(i).drafts().length < most && !kv.grow(r, 1 + most)) {
                // Blocks run short: the step stays as it was, and what this padding grew goes back.
                for (int k = 0; k <= i; k++) kv.shrinkTo(out.get(k).request(), tableSizes[k]);
                return out;
            }
        }
        List<Scheduled> uniform = new ArrayList<>(out.size());
        for (Scheduled s : out) {
            if (s.drafts().length == most) {
                uniform.add(s);
                continue;
            }
            EngineRequest r = s.request();
            int[] drafts = Arrays.copyOf(s.drafts(), most);
            Arrays.fill(drafts, s.drafts().length, most, s.drafts().length > 0 ? s.drafts()[s.drafts().length - 1] : r.token(r.numTokens() - 1));
            uniform.add(new Scheduled(r, 1 + most, drafts, s.drafts().length));
        }
        return uniform;
    }

    /**
     * The images a step's prompt chunks touch, by content hash, and their feature rows: a vision model
     * encodes and keeps each whole for the step (and no image's rows are dropped while a step uses them),
     * so a chunk stops before an image that would take them past the rows kept for features.
     */
    private static final class StepImages {
        private final int limit;
        private final java.util.Set<String> touched = new java.util.HashSet<>();
        private long rows;
        private final Map<String, Integer> pending = new HashMap<>();

        StepImages(int limit) {
            this.limit = limit;
        }

        /**
         * The tokens of {@code tokens} from prompt position {@code from} that the request may compute
         * this step: all, or up to the first image whose rows do not fit beside those already touched
         * (0 where that image starts at or before {@code from}). Its images are pending until {@link #take}.
         */
        int fit(EngineRequest request, int from, int tokens) {
            pending.clear();
            if (tokens <= 0) return tokens;
            long added = 0;
            for (PromptImage image : request.imagesAmong(from, from + tokens)) {
                String key = image.image().contentHash();
                if (touched.contains(key) || pending.containsKey(key)) continue;
                if (rows + added > 0 && rows + added + image.length() > limit) return Math.max(0, image.start() - from);
                pending.put(key, image.length());
                added += image.length();
            }
            return tokens;
        }

        /** Counts the pending images of the last {@link #fit} as touched: the request was scheduled. */
        void take() {
            pending.forEach((key, length) -> {
                if (touched.add(key)) rows += length;
            });
            pending.clear();
        }
    }

    /** The encoder tokens a request adds to the running ones: its encoder input's length, unless one of them holds it. */
    private int newEncoderTokens(EngineRequest request) {
        EncoderInput encoder = request.group().encoder();
        return encoder == null || encodersRunning.containsKey(encoder.hash()) ? 0 : encoder.length();
    }

    private void holdEncoder(EngineRequest request) {
        EncoderInput encoder = request.group().encoder();
        if (encoder == null) return;
        if (encodersRunning.merge(encoder.hash(), 1, Integer::sum) == 1) encoderRowsRunning += keptRows(encoder.length());
    }

    private void releaseEncoder(EngineRequest request) {
        EncoderInput encoder = request.group().encoder();
        if (encoder == null) return;
        Integer left = encodersRunning.computeIfPresent(encoder.hash(), (hash, count) -> count == 1 ? null : count - 1);
        if (left == null) encoderRowsRunning -= keptRows(encoder.length());
    }

    /** The rows an encoder input of {@code tokens} takes where its outputs are kept. */
    private static long keptRows(int tokens) {
        int alignment = Backend.CROSS_ATTENTION_ROW_ALIGNMENT;
        return ((long) tokens + alignment - 1) / alignment * alignment;
    }

    /**
     * The images the next steps' prompt chunks will reach first, in about the order they will: those of
     * the running requests whose placeholders are not yet reached (one a step has reached is encoded
     * whole and kept), then the waiting requests'; each image once (siblings of an n > 1 request, or
     * requests sharing a picture), at most {@code max}.
     */
    List<dev.jvllm.ImageInput> upcomingImages(int max) {
        Map<String, dev.jvllm.ImageInput> upcoming = new LinkedHashMap<>();
        for (EngineRequest request : running) {
            if (request.running && !addUpcomingImages(request, upcoming, max)) break;
        }
        for (EngineRequest request : waiting) {
            if (upcoming.size() == max || !addUpcomingImages(request, upcoming, max)) break;
        }
        return List.copyOf(upcoming.values());
    }

    /** Adds the request's images not yet reached; false once {@code upcoming} holds {@code max}. */
    private static boolean addUpcomingImages(EngineRequest request, Map<String, dev.jvllm.ImageInput> upcoming, int max) {
        for (PromptImage image : request.promptImages()) {
            if (image.start() < request.numComputedTokens()) continue;
            if (upcoming.size() == max) return false;
            upcoming.putIfAbsent(image.image().contentHash(), image.image());
        }
        return true;
    }

    /** The rows the running requests' encoder outputs take (encoder-decoder models), for tests and metrics. */
    long encoderRowsRunning() {
        return encoderRowsRunning;
    }

    /** A fresh sibling of an n > 1 request whose first sequence is running but has not yet computed the shareable prompt. */
    private boolean waitsForLeader(EngineRequest request) {
        EngineRequest leader = request.group().leader();
        if (leader == request || request.numOutputTokens() > 0) return false;
        int shareable = (request.promptLength() - 1) / kv.blockSize() * kv.blockSize();
        return shareable > 0 && leader.numComputedTokens() < shareable && leader.running;
    }

    private void preempt(EngineRequest request) {
        request.running = false;
        releaseEncoder(request);
        kv.free(request);
        request.resetForRecompute();
        waiting.addFirst(request);
        preemptions++;
    }

    /** The requests it holds, running then waiting (for checks that every block comes back). */
    List<EngineRequest> requests() {
        List<EngineRequest> held = new ArrayList<>();
        for (EngineRequest request : running) if (request.running) held.add(request);
        held.addAll(waiting);
        return held;
    }

    /** Removes a finished or aborted request and frees its blocks. */
    void remove(EngineRequest request) {
        if (request.running) {
            request.running = false;
            releaseEncoder(request);
            removedFromRunning++;
        } else {
            waiting.remove(request);
        }
        kv.free(request);
    }

    private void dropRemoved() {
        if (removedFromRunning == 0) return;
        running.removeIf(r -> !r.running);
        removedFromRunning = 0;
    }

    /** All requests still queued or running, for abort-all and shutdown. */
    List<EngineRequest> all() {
        dropRemoved();
        List<EngineRequest> all = new ArrayList<>(running);
        all.addAll(waiting);
        return all;
    }
}
