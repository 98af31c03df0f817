package dev.jvllm.engine;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

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

    /** One request's share of a step. */
    record Scheduled(EngineRequest request, int numTokens) {
    }

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
     * Encoder-decoder models: the encoder tokens whose outputs the model keeps at once, and those of
     * the running requests (by encoder input, sequences of one request counted once).
     */
    private final int encoderTokensKept;
    private final int encoderTokensAStep;
    private final Map<String, Integer> encodersRunning = new HashMap<>();
    private long encoderTokensRunning;

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
        this.kv = kv;
        this.maxNumBatchedTokens = maxNumBatchedTokens;
        this.maxNumSeqs = maxNumSeqs;
        this.encoderTokensKept = encoderTokensKept;
        this.encoderTokensAStep = encoderTokensAStep;
    }

    void add(EngineRequest request) {
        waiting.addLast(request);
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
        for (int i = 0; i < running.size() && budget > 0; i++) {
            EngineRequest request = running.get(i);
            int tokens = Math.min(request.numTokens() - request.numComputedTokens(), budget);
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
                    && (encoderTokens > encoderLeft || encoderTokensRunning + encoderTokens > encoderTokensKept)) {
                break;
            }
            KvCacheManager.PrefixMatch prefix = kv.findSharedPrefix(request);
            int remaining = request.numTokens() - request.numComputedTokens() - prefix.blocks().length * kv.blockSize();
            int tokens = Math.min(remaining, budget);
            if (!kv.admit(request, tokens, prefix)) break;
            waiting.removeFirst();
            running.add(request);
            request.running = true;
            holdEncoder(request);
            out.add(new Scheduled(request, tokens));
            budget -= tokens;
            encoderLeft -= encoderTokens;
        }
        return out;
    }

    /** The encoder tokens a request adds to the running ones: its encoder input's length, unless one of them holds it. */
    private int newEncoderTokens(EngineRequest request) {
        EncoderInput encoder = request.group().encoder();
        return encoder == null || encodersRunning.containsKey(encoder.hash()) ? 0 : encoder.length();
    }

    private void holdEncoder(EngineRequest request) {
        EncoderInput encoder = request.group().encoder();
        if (encoder == null) return;
        if (encodersRunning.merge(encoder.hash(), 1, Integer::sum) == 1) encoderTokensRunning += encoder.length();
    }

    private void releaseEncoder(EngineRequest request) {
        EncoderInput encoder = request.group().encoder();
        if (encoder == null) return;
        Integer left = encodersRunning.computeIfPresent(encoder.hash(), (hash, count) -> count == 1 ? null : count - 1);
        if (left == null) encoderTokensRunning -= encoder.length();
    }

    /** Encoder tokens of the running requests (encoder-decoder models), for tests and metrics. */
    long encoderTokensRunning() {
        return encoderTokensRunning;
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
